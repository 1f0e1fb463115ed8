"""``smsgate serve``'s gunicorn hooks: what each worker does once it has loaded the app."""

from __future__ import annotations

import gc

from smsgate.server import serve_options


def test_each_worker_freezes_what_it_loaded_so_full_collections_skip_it() -> None:
    """The objects alive when a worker has loaded the app (modules, app, engine, grammar) go to
    the collector's permanent generation; a full collection then walks only what requests make."""
    options = serve_options("127.0.0.1", 8000, workers=1, threads=4)
    loaded: list[object] = ["loaded before the hook runs"]  # a list: the collector tracks every one
    assert any(tracked is loaded for tracked in gc.get_objects())
    before = gc.get_freeze_count()
    try:
        options["post_worker_init"](None)
        assert gc.get_freeze_count() > before
        assert not any(tracked is loaded for tracked in gc.get_objects())
        made_later: list[object] = ["made after the hook"]
        assert any(tracked is made_later for tracked in gc.get_objects())
    finally:
        gc.unfreeze()


def test_the_hooks_come_on_top_of_the_settings_the_bench_shares() -> None:
    options = serve_options("127.0.0.1", 8000, workers=2, threads=4)
    assert options["workers"] == 2 and options["threads"] == 4 and options["worker_class"] == "gthread"
    assert callable(options["child_exit"])
