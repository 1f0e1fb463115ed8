"""Synthetic elections with realistic heterogeneity, vectorised with numpy.

The frame: one province, kabupaten, kecamatan, desa and stations with Kemendagri-shaped codes.
An election: each kabupaten its own shares (a random effect per candidate on the logit scale),
shares correlated within desa (a desa effect shared by its stations), a small station effect,
turnout varying by kabupaten and by station, invalid ballots, then multinomial votes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASE_LOGITS = np.array([-0.35, 0.55, -0.45])  # roughly 25% / 58% / 17%


@dataclass(frozen=True)
class Frame:
    station_ids: np.ndarray  # 13-digit KPU form
    desa: np.ndarray  # desa position per station
    kab: np.ndarray  # kabupaten position per station
    kab_codes: list[str]  # dotted kabupaten code per kabupaten position
    desa_codes: list[str]  # dotted desa code per desa position
    registered: np.ndarray

    @property
    def strata(self) -> np.ndarray:
        return np.array(self.kab_codes)[self.kab]

    def regions(self) -> list[tuple[str, str]]:
        items = {(self.kab_codes[0].split(".")[0], "Provinsi Sintetis")}
        for code in self.desa_codes:
            parts = code.split(".")
            for depth, word in ((2, "Kab"), (3, "Kec"), (4, "Desa")):
                items.add((".".join(parts[:depth]), f"{word} {'.'.join(parts[1:depth])}"))
        return sorted(items)

    def station_rows(self) -> list[tuple[str, int, int | None]]:
        return [
            (self.desa_codes[d], int(sid[-3:]), int(r))
            for sid, d, r in zip(self.station_ids, self.desa, self.registered, strict=True)
        ]


def build_frame(
    seed: int,
    kabupaten: int = 15,
    kecamatan: int = 5,
    desa: int = 8,
    stations: tuple[int, int] = (3, 13),
    province: str = "63",
) -> Frame:
    rng = np.random.default_rng(seed)
    ids, desa_pos, kab_pos, kab_codes, desa_codes, registered = [], [], [], [], [], []
    for k in range(kabupaten):
        kab_code = f"{province}.{k + 1:02d}"
        kab_codes.append(kab_code)
        for c in range(kecamatan):
            for d in range(desa):
                code = f"{kab_code}.{c + 1:02d}.{2001 + d}"
                desa_codes.append(code)
                count = int(rng.integers(*stations))
                for tps in range(1, count + 1):
                    ids.append(code.replace(".", "") + f"{tps:03d}")
                    desa_pos.append(len(desa_codes) - 1)
                    kab_pos.append(k)
                    registered.append(int(rng.integers(120, 301)))
    return Frame(
        station_ids=np.array(ids),
        desa=np.array(desa_pos),
        kab=np.array(kab_pos),
        kab_codes=kab_codes,
        desa_codes=desa_codes,
        registered=np.array(registered),
    )


@dataclass(frozen=True)
class Election:
    votes: np.ndarray  # stations x candidates
    invalid: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.votes.sum(axis=1)

    @property
    def shares(self) -> np.ndarray:
        return self.votes.sum(axis=0) / self.votes.sum()

    def turnout(self, registered: np.ndarray) -> float:
        return float((self.valid.sum() + self.invalid.sum()) / registered.sum())


def simulate(frame: Frame, rng: np.random.Generator) -> Election:
    k = len(BASE_LOGITS)
    n_kab, n_desa, n = len(frame.kab_codes), len(frame.desa_codes), len(frame.station_ids)
    logits = (
        BASE_LOGITS
        + rng.normal(0, 0.5, (n_kab, k))[frame.kab]
        + rng.normal(0, 0.35, (n_desa, k))[frame.desa]
        + rng.normal(0, 0.1, (n, k))
    )
    shares = np.exp(logits)
    shares /= shares.sum(axis=1, keepdims=True)
    turnout_logit = 1.2 + rng.normal(0, 0.3, n_kab)[frame.kab] + rng.normal(0, 0.4, n)
    turnout = 1 / (1 + np.exp(-turnout_logit))
    cast = rng.binomial(frame.registered, turnout)
    invalid = rng.binomial(cast, 0.02)
    votes = rng.multinomial(cast - invalid, shares)
    return Election(votes=votes, invalid=invalid)
