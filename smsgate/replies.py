"""Every text we send, in Indonesian and English, in one place.

Keys are stable; ``render`` picks the contact's language and fits the result into one
GSM-7 SMS. Errors start with GAGAL (id) / ERROR (en), accepted things with OK.
Templates use ``str.format`` fields; ``{ex}`` is the short correct example.
"""

from __future__ import annotations

from collections.abc import Mapping

from grammar.keywords import COMMANDS

from .sms import fit

EXAMPLE = "TPS 012 01=123 02=98 03=150"

#: key -> (Indonesian, English). Keep each under 160 characters with realistic values.
CATALOGUE: Mapping[str, tuple[str, str]] = {
    # --- grammar errors (keys are grammar.ParseError codes) ---
    "empty": ("GAGAL: pesan kosong.", "ERROR: empty message."),
    "unknown_command": (
        "GAGAL: '{token}' tidak dikenal. Kirim BANTUAN.",
        "ERROR: '{token}' not understood. Send HELP.",
    ),
    "unknown_candidate": (
        "GAGAL: kandidat {field} tidak ada (ada {codes}).",
        "ERROR: no candidate {field} (valid: {codes}).",
    ),
    "missing_candidate": (
        "GAGAL: suara kandidat {missing} tidak ada. Isi semua kandidat.",
        "ERROR: votes for candidate {missing} missing. Give every candidate.",
    ),
    "duplicate_candidate": (
        "GAGAL: kandidat {field} ditulis 2 kali.",
        "ERROR: candidate {field} given twice.",
    ),
    "bad_number": (
        "GAGAL: angka {field} '{token}' tidak sah (0-9999, tanpa titik/koma).",
        "ERROR: number for {field} '{token}' is invalid (0-9999, no dots/commas).",
    ),
    "sum_mismatch": (
        "GAGAL: SAH={expected} tapi jumlah suara {actual}.",
        "ERROR: SAH={expected} but the votes add up to {actual}.",
    ),
    "no_station": ("GAGAL: nomor TPS tidak ada.", "ERROR: station number missing."),
    "bad_station": (
        "GAGAL: TPS '{token}' tidak sah (1-999).",
        "ERROR: station '{token}' is invalid (1-999).",
    ),
    "positional_count": (
        "GAGAL: ada {actual} angka, harus {expected} (1 per kandidat).",
        "ERROR: {actual} numbers given, need {expected} (1 per candidate).",
    ),
    "missing_argument": (
        "GAGAL: {field} perlu isi. Contoh: {usage}",
        "ERROR: {field} needs more. Example: {usage}",
    ),
    "unexpected_token": ("GAGAL: tidak paham '{token}'.", "ERROR: cannot read '{token}'."),
    # A bug inside the grammar (ParseError details "internal_error"): not the sender's mistake.
    "parse_fault": (
        "GAGAL: kesalahan sistem saat membaca pesan ini, sudah dicatat. Laporkan ke koordinator Anda.",
        "ERROR: a system fault reading this message; it is logged. Please tell your coordinator.",
    ),
    # --- checks in the core ---
    "unregistered": (
        "GAGAL: nomor ini belum terdaftar di smsgate. Hubungi koordinator Anda. "
        "/ ERROR: number not registered.",
        "ERROR: this number is not registered. Please contact your coordinator.",
    ),
    "station_required": (
        "GAGAL: sebutkan nomor TPS.",
        "ERROR: say which station.",
    ),
    "desa_required": (
        "GAGAL: sebutkan ID TPS lengkap, mis. TPS 6371011001012.",
        "ERROR: give the full station ID, e.g. TPS 6371011001012.",
    ),
    "unknown_station": (
        "GAGAL: TPS {station} tidak terdaftar.",
        "ERROR: station {station} is not registered.",
    ),
    "other_desa": (
        "GAGAL: TPS {station} bukan di desa Anda ({desa}).",
        "ERROR: station {station} is not in your desa ({desa}).",
    ),
    "other_station": (
        "GAGAL: Anda terdaftar untuk TPS {assigned}, bukan TPS {tps}.",
        "ERROR: you are registered for station {assigned}, not {tps}.",
    ),
    "out_of_scope": (
        "GAGAL: {target} di luar wilayah Anda.",
        "ERROR: {target} is outside your area.",
    ),
    "pin_required": (
        "GAGAL: perintah ini perlu PIN koordinator. Akhiri SMS dengan PIN Anda, "
        "mis. SIARAN rapat jam 5 PIN 4821. Tidak disimpan.",
        "ERROR: this command needs your coordinator PIN. End the SMS with it, "
        "e.g. BROADCAST meet at 5 PIN 4821. Nothing saved.",
    ),
    "pin_wrong": (
        "GAGAL: PIN salah, tidak disimpan (sisa {left} kali coba).",
        "ERROR: wrong PIN, nothing saved ({left} tries left).",
    ),
    "pin_locked": (
        "GAGAL: terlalu banyak PIN salah. Coba lagi setelah {until} atau minta admin mengatur ulang PIN.",
        "ERROR: too many wrong PINs. Try again after {until} or ask your admin to reset your PIN.",
    ),
    "pin_not_set": (
        "GAGAL: Anda belum punya PIN. Minta admin membuatkan PIN (smsgate pin set).",
        "ERROR: you have no PIN yet. Ask your admin to make one (smsgate pin set).",
    ),
    "pin_choose_first": (
        "GAGAL: pilih PIN dulu: kirim PIN lalu 4-6 angka, mis. PIN 4821.",
        "ERROR: choose your PIN first: send PIN and 4-6 digits, e.g. PIN 4821.",
    ),
    "pin_needs_old": (
        "GAGAL: Anda sudah punya PIN. Untuk ganti kirim PIN <lama> <baru>, mis. PIN 4821 7390.",
        "ERROR: you already have a PIN. To change it send PIN <old> <new>, e.g. PIN 4821 7390.",
    ),
    "pin_set": (
        "OK PIN tersimpan. Akhiri laporan, BATAL, SIARAN dan YA dengan PIN Anda, mis. YA K7Q2 PIN 4821.",
        "OK PIN saved. End reports, CANCEL, BROADCAST and YES with your PIN, e.g. YES K7Q2 PIN 4821.",
    ),
    "pin_changed": ("OK PIN diganti.", "OK PIN changed."),
    "coordinator_only": (
        "GAGAL: perintah {command} hanya untuk koordinator.",
        "ERROR: {command} is for coordinators only.",
    ),
    "try_again": (
        "GAGAL: sistem sedang sibuk. Kirim ulang pesan yang sama sebentar lagi.",
        "ERROR: system busy. Please send the same message again shortly.",
    ),
    # --- accepted ---
    "accepted": ("OK {station} {votes}{extras} Ref {ref}", "OK {station} {votes}{extras} Ref {ref}"),
    "accepted_flagged": (
        "OK DICEK {station} {votes}{extras} Ref {ref}. Suara+TS {total} > DPT {registered}+2%",
        "OK CHECK {station} {votes}{extras} Ref {ref}. Votes+invalid {total} > DPT {registered}+2%",
    ),
    "accepted_dissent": (
        "OK {station} {votes}{extras} Ref {ref}. Berbeda dgn {count} laporan lain di TPS ini.",
        "OK {station} {votes}{extras} Ref {ref}. Differs from {count} other reports at this TPS.",
    ),
    "accepted_overridden": (
        "OK DITINJAU {station} {votes}{extras} Ref {ref}. Beda dgn kesepakatan {count} relawan: "
        "belum dihitung sampai dikonfirmasi di dasbor.",
        "OK HELD {station} {votes}{extras} Ref {ref}. Differs from what {count} volunteers agree: "
        "not counted until confirmed on the dashboard.",
    ),
    "dissent_hint": (
        "Periksa C.Hasil, kirim ulang bila salah.",
        "Check the C.Hasil form; resend if wrong.",
    ),
    "accepted_hint": ("Salah? Kirim ulang yg benar atau BATAL {ref}", "Wrong? Resend or CANCEL {ref}"),
    "help": (
        "OK Format: TPS <no> 01=<suara> 02=<suara> 03=<suara>, boleh +SAH=n TS=n. Contoh: {ex}. "
        "Perintah: CEK, BATAL <ref>, LAPOR <teks>",
        "OK Format: TPS <no> 01=<votes> 02=<votes> 03=<votes>, optional SAH=n TS=n. Example: {ex}. "
        "Commands: CHECK, CANCEL <ref>, INCIDENT <text>",
    ),
    "help_coordinator": (
        "OK Koordinator: REKAP (wilayah), BELUM (wilayah), STATUS <ID TPS>, QC (wilayah). Lapor: {ex}",
        "OK Coordinator: TOTAL (region), MISSING (region), STATUS <station ID>, QC (region). Report: {ex}",
    ),
    "not_available": (
        "GAGAL: perintah {command} belum tersedia.",
        "ERROR: {command} is not available yet.",
    ),
    # --- volunteer commands ---
    "check_none": ("OK {station}: belum ada laporan Anda.", "OK {station}: no report from you yet."),
    "check": (
        "OK {station} {votes}{extras} Ref {ref} ({status}, {count} laporan)",
        "OK {station} {votes}{extras} Ref {ref} ({status}, {count} reports)",
    ),
    "cancelled": ("OK laporan {ref} {station} dibatalkan.", "OK report {ref} {station} cancelled."),
    "cancel_none": ("GAGAL: tidak ada laporan untuk dibatalkan.", "ERROR: no report to cancel."),
    "cancel_unknown": (
        "GAGAL: laporan {ref} tidak ditemukan atau bukan milik Anda.",
        "ERROR: report {ref} not found or not yours.",
    ),
    # --- broadcasts and reminders ---
    "broadcast_pending": (
        "OK siaran ke {count} relawan. Kirim YA {code} dalam {minutes} menit untuk mengirim.",
        "OK broadcast to {count} volunteers. Send YES {code} within {minutes} min to send it.",
    ),
    "broadcast_none": (
        "GAGAL: tidak ada relawan aktif di wilayah Anda.",
        "ERROR: no active volunteers in your area.",
    ),
    "broadcast_sent": (
        "OK siaran {code} dikirim ke {count} relawan.",
        "OK broadcast {code} sent to {count} volunteers.",
    ),
    "confirm_unknown": (
        "GAGAL: kode {code} tidak dikenal atau kedaluwarsa. Kirim SIARAN lagi.",
        "ERROR: code {code} unknown or expired. Send BROADCAST again.",
    ),
    "broadcast_text": ("SIARAN {name}: {text}", "BROADCAST {name}: {text}"),
    "broadcast_too_long": (
        "GAGAL: teks siaran {length} huruf, maks {limit}. Persingkat lalu kirim lagi.",
        "ERROR: broadcast text is {length} chars, max {limit}. Shorten it and send again.",
    ),
    "reminder": (
        "Pengingat: hasil {station} belum masuk. Kirim: {ex}",
        "Reminder: no result yet for {station}. Send: {ex}",
    ),
    # --- verification and coordination ---
    "incident_recorded": (
        "OK kejadian dicatat untuk {place}. Ref {ref}. Koordinator Anda akan melihatnya.",
        "OK incident recorded for {place}. Ref {ref}. Your coordinator will see it.",
    ),
    "totals": (
        "OK REKAP {region}: {reported}/{total} TPS. {votes} Beda {disputed} Cek {flagged}",
        "OK TOTAL {region}: {reported}/{total} stations. {votes} Disputed {disputed} Flagged {flagged}",
    ),
    "missing_list": (
        "OK BELUM {region}: {missing}/{total} TPS belum lapor: {stations}",
        "OK MISSING {region}: {missing}/{total} stations not reported: {stations}",
    ),
    "missing_none": (
        "OK BELUM {region}: semua {total} TPS sudah lapor.",
        "OK MISSING {region}: all {total} stations have reported.",
    ),
    "station_status": (
        "OK STATUS {station} {status}: {votes}{extras}, {count} laporan.",
        "OK STATUS {station} {status}: {votes}{extras}, {count} reports.",
    ),
    "station_status_missing": (
        "OK STATUS {station}: belum ada laporan.",
        "OK STATUS {station}: no report yet.",
    ),
    "status_flags": ("Cek: {kinds}", "Flags: {kinds}"),
    "status_incidents": ("Kejadian: {count}", "Incidents: {count}"),
    "unknown_region": (
        "GAGAL: wilayah '{region}' tidak ditemukan. Contoh: {command} 63.71 atau {command} BANJARMASIN",
        "ERROR: region '{region}' not found. Example: {command} 63.71 or {command} BANJARMASIN",
    ),
    "ambiguous_region": (
        "GAGAL: '{region}' ada {count}, kirim kodenya: {choices}",
        "ERROR: '{region}' matches {count}, send the code: {choices}",
    ),
    "registered": (
        "OK {name} terdaftar sbg relawan {place}. Kirim hasil spt: {ex}",
        "OK {name} registered as volunteer for {place}. Send results like: {ex}",
    ),
    "registered_coordinator": (
        "OK {name} terdaftar sbg koordinator {place}. Kirim BANTUAN untuk perintah.",
        "OK {name} registered as coordinator for {place}. Send HELP for the commands.",
    ),
    "register_already": (
        "GAGAL: nomor ini sudah terdaftar ({name}, {place}). Kirim BANTUAN untuk format.",
        "ERROR: this number is already registered ({name}, {place}). Send HELP for the format.",
    ),
    "register_inactive": (
        "GAGAL: nomor ini dinonaktifkan. Hubungi koordinator Anda.",
        "ERROR: this number has been deactivated. Please contact your coordinator.",
    ),
    "register_bad_phone": (
        "GAGAL: nomor pengirim tidak bisa didaftarkan.",
        "ERROR: the sending number cannot be registered.",
    ),
    "invite_unknown": (
        "GAGAL: kode undangan {code} tidak dikenal. Periksa lagi (sisa {left} kali coba).",
        "ERROR: invite code {code} not recognised. Check it ({left} tries left).",
    ),
    "invite_expired": (
        "GAGAL: kode undangan {code} sudah kedaluwarsa. Minta kode baru ke koordinator.",
        "ERROR: invite code {code} has expired. Ask your coordinator for a new one.",
    ),
    "invite_used_up": (
        "GAGAL: kode undangan {code} sudah habis dipakai. Minta kode baru ke koordinator.",
        "ERROR: invite code {code} has been used up. Ask your coordinator for a new one.",
    ),
    "register_locked": (
        "GAGAL: terlalu banyak kode salah. Coba lagi setelah {until}.",
        "ERROR: too many wrong codes. Try again after {until}.",
    ),
    # --- QC (quick count; smsgate/commands/quickcount.py) ---
    "qc": (
        "OK QC {region}: {call}{notes}. TPS sampel {counted}/{sample}, +-95%:",
        "OK QC {region}: {call}{notes}. Sample stations {counted}/{sample}, +-95%:",
    ),
    "qc_too_few": (
        "OK QC {region}: belum cukup TPS sampel melapor ({counted}/{sample}).",
        "OK QC {region}: not enough sample stations in yet ({counted}/{sample}).",
    ),
    "qc_no_design": (
        "GAGAL: sampel quick count belum dibuat.",
        "ERROR: no quick-count sample has been drawn yet.",
    ),
    "qc_no_sample": (
        "GAGAL: tidak ada TPS sampel di {region}.",
        "ERROR: no sample station in {region}.",
    ),
    "qc_called": ("PASTI: {first} unggul", "CALLED: {first} ahead"),
    "qc_leading": ("{first} unggul sementara", "{first} leading"),
    "qc_too_close": ("BELUM BISA DIPASTIKAN", "TOO CLOSE TO CALL"),
    "qc_win_called": ("PASTI: {first} menang", "CALLED: {first} wins"),
    "qc_win_leading": ("{first} menang sementara", "{first} winning"),
    "qc_runoff_called": ("PASTI: putaran 2 {first} vs {second}", "CALLED: runoff {first} vs {second}"),
    "qc_runoff_leading": ("sementara putaran 2 {first} vs {second}", "runoff likely {first} vs {second}"),
    "qc_caution": (" AWAS: {warnings}", " CAUTION: {warnings}"),
    "qc_lead": ("selisih {first}-{second} {lead}", "lead {first}-{second} {lead}"),
    "qc_disputed": (" Beda {count}", " Disputed {count}"),
}

#: The quick count's warnings in a QC reply, shortest wording (smsgate/commands/quickcount.py).
QC_WARNINGS: Mapping[str, tuple[str, str]] = {
    "indicative": ("indikatif", "indicative"),
    "nonresponse_bias": ("yg belum lapor berbeda", "missing ones differ"),
    "many_disputed": ("banyak TPS beda", "many disputed"),
    "low_coverage": ("data baru sedikit", "few reports yet"),
    "uneven_coverage": ("sebaran tdk merata", "uneven coverage"),
}

#: Usage shown with ``missing_argument``, per canonical command word.
USAGE: Mapping[str, tuple[str, str]] = {
    "LAPOR": ("LAPOR formulir C1 hilang", "INCIDENT C1 form missing"),
    "DAFTAR": ("DAFTAR K7Q2XM Budi", "REG K7Q2XM Budi"),
    "STATUS": ("STATUS 6371011001012", "STATUS 6371011001012"),
    "SIARAN": ("SIARAN rapat jam 19", "BROADCAST meeting at 7pm"),
    "YA": ("YA K7Q2", "YES K7Q2"),
}

STATUS_WORDS: Mapping[str, tuple[str, str]] = {
    "missing": ("belum", "missing"),
    "reported": ("dilaporkan", "reported"),
    "verified": ("terverifikasi", "verified"),
    "disputed": ("berbeda", "disputed"),
    "overridden": ("diubah koord., ditinjau", "overridden, under review"),
}


def lang_index(lang: str | None) -> int:
    return 1 if lang == "en" else 0


def text(key: str, lang: str | None, **params: object) -> str:
    """The raw template filled in, not yet fitted: for building one reply from pieces."""
    template = CATALOGUE[key][lang_index(lang)]
    return template.format(ex=EXAMPLE, **params)


def render(key: str, lang: str | None, *extras: str, example: bool = False, **params: object) -> str:
    """One SMS: the message, then optional extras and the example while there is room."""
    parts = [text(key, lang, **params), *extras]
    if example:
        parts.append(("Contoh: " if lang_index(lang) == 0 else "Example: ") + EXAMPLE)
    return fit(*parts)


def status_word(status: str, lang: str | None) -> str:
    return STATUS_WORDS.get(status, (status, status))[lang_index(lang)]


def command_word(command: str, lang: str | None) -> str:
    """The command as the contact would type it: ``BELUM`` in Indonesian, ``MISSING`` in English."""
    aliases = COMMANDS.get(command, (command,))
    return aliases[1] if lang_index(lang) == 1 and len(aliases) > 1 and aliases[1].isalpha() else command


def usage(command: str, lang: str | None) -> str:
    return USAGE.get(command, (command, command))[lang_index(lang)]
