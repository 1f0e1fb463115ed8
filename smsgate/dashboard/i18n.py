"""Every dashboard UI string, Indonesian first and English second (like ``replies.py`` for SMS).

Templates call ``t("key")``; the language comes from the session (``/dashboard/lang``).
"""

from __future__ import annotations

LANGUAGES = ("id", "en")
DEFAULT = "id"

CATALOGUE: dict[str, tuple[str, str]] = {
    "app_title": ("smsgate — Dasbor Koordinator", "smsgate — Coordinator dashboard"),
    "login": ("Masuk", "Log in"),
    "logout": ("Keluar", "Log out"),
    "email": ("Email", "Email"),
    "password": ("Kata sandi", "Password"),
    "login_failed": ("Email atau kata sandi salah.", "Wrong email or password."),
    "login_wait": (
        "Terlalu banyak percobaan gagal dari alamat ini. Coba lagi dalam {minutes} menit.",
        "Too many failed attempts from this address. Try again in {minutes} min.",
    ),
    "change_password": ("Ganti kata sandi", "Change password"),
    "current_password": ("Kata sandi sekarang", "Current password"),
    "new_password": ("Kata sandi baru", "New password"),
    "repeat_password": ("Ulangi kata sandi baru", "Repeat the new password"),
    "password_wrong": ("Kata sandi sekarang salah.", "The current password is wrong."),
    "password_mismatch": ("Kedua kata sandi baru tidak sama.", "The two new passwords differ."),
    "password_too_short": (
        "Kata sandi baru minimal {n} karakter.",
        "The new password needs at least {n} characters.",
    ),
    "password_changed": (
        "Kata sandi diganti. Sesi lain akun ini sudah diakhiri.",
        "Password changed. The account's other sessions have been ended.",
    ),
    "language": ("Bahasa", "Language"),
    "switch_language": ("English", "Bahasa Indonesia"),
    "overview": ("Ringkasan", "Overview"),
    "regions": ("Wilayah", "Regions"),
    "review": ("Tinjauan", "Review"),
    "messages": ("Pesan", "Messages"),
    "incidents": ("Insiden", "Incidents"),
    "gateways": ("Gateway SMS", "SMS gateways"),
    "gateway_warnings": ("Peringatan gateway SMS", "SMS gateway warnings"),
    "gateway_device": ("Perangkat", "Device"),
    "gateway_state": ("Status", "State"),
    "gateway_last_seen": ("Terakhir aktif", "Last seen"),
    "gateway_received": ("Masuk 15 mnt", "Received 15 min"),
    "gateway_sent": ("Terkirim 15 mnt", "Sent 15 min"),
    "gateway_queue": ("Antrean", "Queue"),
    "gateway_oldest": ("Tertua (dtk)", "Oldest (s)"),
    "gateway_lag": ("Jeda balasan p50/p95 (dtk)", "Reply lag p50/p95 (s)"),
    "gateway_today": ("Hari ini", "Today"),
    "gateway_failures": ("Gagal", "Failures"),
    "gateway_none": (
        "Belum ada perangkat gateway (atur SMSGATE_GATEWAYS).",
        "No gateway devices configured (set SMSGATE_GATEWAYS).",
    ),
    "gateway_unrouted": (
        "SMS dalam antrean tanpa perangkat sendiri (dialihkan menurut kebijakan)",
        "Queued SMS with no device of their own (they fail over by the policy)",
    ),
    "gateway_state_up": ("aktif", "up"),
    "gateway_state_down": ("mati", "down"),
    "gateway_state_disabled": ("dinonaktifkan", "disabled"),
    "volunteers": ("Relawan", "Volunteers"),
    "scope": ("Cakupan", "Scope"),
    "stations": ("TPS", "Stations"),
    "station": ("TPS", "Station"),
    "total": ("Total", "Total"),
    "reported": ("Melapor", "Reported"),
    "verified": ("Terverifikasi", "Verified"),
    "disputed": ("Sengketa", "Disputed"),
    "overridden": ("Diubah koordinator", "Overridden"),
    "override_changed": ("Koordinator {who} mengubah", "Coordinator {who} changed"),
    "override_counted": (
        "Sampai diputuskan, total dan hitung cepat memakai kesepakatan relawan (Ref {ref}).",
        "Until decided, the totals and the quick count use the volunteers' agreement (Ref {ref}).",
    ),
    "resolve_flags": ("Tandai sudah ditinjau", "Mark reviewed"),
    "flags_resolved": (
        "{count} tanda TPS {station} ditandai selesai.",
        "{count} flags of station {station} resolved.",
    ),
    "accept_override": ("Terima angka koordinator", "Accept the coordinator's numbers"),
    "reject_override": ("Tolak, pakai kesepakatan relawan", "Reject: keep the volunteers' agreement"),
    "override_rejected": (
        "Laporan koordinator {ref} ditolak; kesepakatan relawan dihitung lagi.",
        "Coordinator's report {ref} rejected; the volunteers' agreement counts again.",
    ),
    "flagged": ("Ditandai", "Flagged"),
    "missing": ("Belum melapor", "Missing"),
    "status": ("Status", "Status"),
    "name": ("Nama", "Name"),
    "code": ("Kode", "Code"),
    "votes": ("Suara", "Votes"),
    "share": ("Persentase", "Share"),
    "valid": ("Sah", "Valid"),
    "invalid": ("Tidak sah", "Invalid"),
    "candidate": ("Calon", "Candidate"),
    "votes_by_candidate": ("Suara per calon", "Votes per candidate"),
    "reports_per_minute": ("Laporan per menit", "Reports per minute"),
    "quick_count": ("Hitung cepat", "Quick count"),
    "quick_count_unavailable": (
        "Hitung cepat belum tersedia.",
        "Quick count not available yet.",
    ),
    "interval": ("Interval", "Interval"),
    "sample": ("Sampel", "Sample"),
    "updated": ("Diperbarui", "Updated"),
    "progress": ("Kemajuan", "Progress"),
    "children": ("Sub-wilayah", "Sub-regions"),
    "export_csv": ("Unduh CSV", "Export CSV"),
    "country": ("Indonesia", "Indonesia"),
    "reports": ("Laporan", "Reports"),
    "flags": ("Tanda", "Flags"),
    "decisions": ("Keputusan koordinator", "Coordinator decisions"),
    "ref": ("Ref", "Ref"),
    "from": ("Dari", "From"),
    "to": ("Kepada", "To"),
    "received": ("Diterima", "Received"),
    "superseded": ("digantikan", "superseded"),
    "cancelled": ("dibatalkan", "cancelled"),
    "current": ("berlaku", "current"),
    "counted": ("dihitung", "counted"),
    "by_coordinator": ("oleh koordinator", "by coordinator"),
    "message": ("Pesan", "Message"),
    "reply": ("Balasan", "Reply"),
    "outcome": ("Hasil", "Outcome"),
    "direction": ("Arah", "Direction"),
    "inbound": ("masuk", "in"),
    "outbound": ("keluar", "out"),
    "confirm_report": ("Konfirmasi laporan ini", "Confirm this report"),
    "confirmed_by": ("Dikonfirmasi oleh", "Confirmed by"),
    "decision_saved": (
        "Keputusan disimpan: laporan {ref} dikonfirmasi.",
        "Decision saved: report {ref} confirmed.",
    ),
    "report_not_current": (
        "Laporan itu tidak berlaku lagi; tidak ada yang diubah.",
        "That report no longer counts; nothing changed.",
    ),
    "review_empty": ("Tidak ada yang perlu ditinjau.", "Nothing needs review."),
    "review_queue": ("Perlu keputusan (dampak terbesar dulu)", "Needs a decision (largest impact first)"),
    "impact": ("Dampak", "Impact"),
    "impact_help": (
        "suara yang bisa berpindah oleh keputusan ini",
        "votes this decision can move in the totals",
    ),
    "readings": ("Bacaan yang bersaing", "Competing readings"),
    "reading_reports": ("laporan", "reports"),
    "difference": ("Selisih", "Difference"),
    "dissent": ("Beda pendapat", "Dissent"),
    "dissent_list": (
        "Beda pendapat, mayoritas tetap berlaku",
        "Dissent under a standing majority",
    ),
    "dissent_help": (
        "TPS ini terverifikasi oleh mayoritas yang memenuhi syarat; laporan yang berbeda disimpan dan "
        "ditampilkan di sini. Beda kecil tidak mengubah pemenang TPS.",
        "These stations are verified by a qualified majority; dissenting reports are kept and shown "
        "here. Minor dissent does not change the station's winner.",
    ),
    "dissent_empty": ("Tidak ada beda pendapat yang terbuka.", "No open dissent."),
    "contested": ("mengubah pemenang", "changes the winner"),
    "minor": ("kecil", "minor"),
    "clear_minor": ("Tandai beda kecil selesai ({count} TPS)", "Clear minor dissent ({count} stations)"),
    "clear_station": ("Mayoritas tetap, tandai selesai", "Majority stands, clear"),
    "dissent_cleared": (
        "{count} TPS di {region}: beda pendapat ditandai selesai.",
        "{count} stations in {region}: dissent cleared.",
    ),
    "kecamatan": ("Kecamatan", "Kecamatan"),
    "outvoted": ("kalah suara", "outvoted"),
    "outliers": ("Sering sendirian", "Often alone"),
    "outliers_help": (
        "Relawan di cakupan Anda yang laporannya paling sering kalah suara oleh mayoritas TPS "
        "(minimal separuh laporannya). {count} relawan kalah suara setidaknya sekali. Salah baca "
        "tersebar acak; selisih besar yang selalu menguntungkan kandidat yang sama patut dicek.",
        "Volunteers in your scope whose reports are most often outvoted by their station's majority "
        "(at least half of their reports). {count} volunteers were outvoted at least once. Misreads "
        "scatter at random; large differences that keep favouring one candidate deserve a call.",
    ),
    "outvoted_rate": ("Persentase", "Rate"),
    "deviation": ("Selisih suara", "Votes moved"),
    "favours": ("Menguntungkan", "Favours"),
    "reason": ("Alasan", "Reason"),
    "since": ("Sejak", "Since"),
    "resolved": ("selesai", "resolved"),
    "open": ("terbuka", "open"),
    "search": ("Cari", "Search"),
    "phone": ("Telepon", "Phone"),
    "phone_search_help": (
        "Awal nomor (0812…, +62812…) atau angka terakhirnya (4567)",
        "The start of a number (0812…, +62812…) or its last digits (4567)",
    ),
    "phone_search_invalid": (
        "Telepon: ketik angka saja, awal nomor (0812…) atau angka terakhirnya.",
        "Phone: type digits only, the start of a number (0812…) or its last digits.",
    ),
    "text": ("Teks", "Text"),
    "any": ("semua", "any"),
    "previous": ("Sebelumnya", "Previous"),
    "next": ("Berikutnya", "Next"),
    "page": ("Halaman", "Page"),
    "no_results": ("Tidak ada data.", "No data."),
    "history_of": ("Riwayat {phone}", "History of {phone}"),
    "not_reported": ("Relawan yang belum melapor", "Volunteers who have not reported"),
    "region": ("Wilayah", "Region"),
    "tps": ("TPS", "TPS"),
    "incidents_unavailable": ("Insiden belum tersedia.", "Incidents are not available yet."),
    "when": ("Waktu", "When"),
    "view_messages": ("Lihat pesan", "View messages"),
    "not_found": ("Tidak ditemukan.", "Not found."),
    "forbidden": ("Di luar cakupan Anda.", "Outside your scope."),
    "role": ("Peran", "Role"),
    "registered_voters": ("DPT", "Registered voters"),
    "live": ("langsung", "live"),
    # the quick-count card (warnings and calls: smsgate/quickcount/analysis.py and call.py)
    "qc_warning_too_few_reports": (
        "Baru kurang dari dua TPS sampel melapor.",
        "Fewer than two sample stations in.",
    ),
    "qc_warning_indicative": (
        "Indikatif: kurang dari 5 TPS sampel terhitung, tanpa interval.",
        "Indicative: fewer than 5 sample stations counted, no interval.",
    ),
    "qc_warning_low_coverage": (
        "Data baru sedikit (di bawah 20% sampel).",
        "Few reports yet (under 20% of the sample).",
    ),
    "qc_warning_uneven_coverage": (
        "Sebaran tidak merata: sebagian strata jauh tertinggal.",
        "Uneven coverage: some strata lag far behind.",
    ),
    "qc_warning_collapsed_strata": (
        "Strata dengan kurang dari dua laporan digabung dengan tetangganya.",
        "Strata with fewer than two reports were merged with a neighbour.",
    ),
    "qc_warning_nonresponse_bias": (
        "TPS yang belum melapor berbeda dari yang sudah: lihat perkiraan terkoreksi.",
        "The stations not yet in differ from those in: see the adjusted estimate.",
    ),
    "qc_warning_many_disputed": (
        "Banyak TPS sampel bersengketa (tidak dihitung).",
        "Many sample stations are disputed (left out).",
    ),
    "qc_call_called": ("Pasti: {first} unggul", "Called: {first} ahead"),
    "qc_call_leading": ("{first} unggul sementara", "{first} leading"),
    "qc_call_too_close_to_call": ("Belum bisa dipastikan", "Too close to call"),
    "qc_presidential_winner_called": ("Pasti: {winner} menang", "Called: {winner} wins"),
    "qc_presidential_winner_leading": ("{winner} menang sementara", "{winner} winning"),
    "qc_presidential_winner_too_close_to_call": ("Belum bisa dipastikan", "Too close to call"),
    "qc_presidential_second_round_called": (
        "Pasti: putaran kedua {first} vs {second}",
        "Called: second round {first} vs {second}",
    ),
    "qc_presidential_second_round_leading": (
        "Sementara: putaran kedua {first} vs {second}",
        "Likely: second round {first} vs {second}",
    ),
    "qc_presidential_second_round_too_close_to_call": ("Belum bisa dipastikan", "Too close to call"),
    "qc_lead": (
        "Selisih {first} atas {second}: {value} poin",
        "Lead of {first} over {second}: {value} points",
    ),
    "qc_adjusted": ("Perkiraan terkoreksi", "Adjusted estimate"),
    "qc_history": ("Perkiraan sepanjang malam", "The estimate through the night"),
    "qc_freshness": (
        "Dihitung {time} dari {counted} hasil sampel",
        "Computed {time} from {counted} sampled results",
    ),
    "qc_freshness_pending": (
        "ada hasil baru; dihitung ulang paling lama tiap {seconds} detik",
        "newer results are in; recomputed at most every {seconds} s",
    ),
}


def translate(key: str, lang: str, **values: object) -> str:
    """The text for ``key`` in ``lang`` (Indonesian when unknown), with ``{name}`` filled in."""
    indonesian, english = CATALOGUE[key]
    text = english if lang == "en" else indonesian
    return text.format(**values) if values else text
