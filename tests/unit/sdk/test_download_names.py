"""A download is saved under a name, never a path the stored name could smuggle in."""

from __future__ import annotations

import pytest

from producers.downloads import local_filename

FILE_ID = "3f0c2a1e-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("original", "saved_as"),
    [
        ("report.pdf", "report.pdf"),
        ("Отчёт 2024.pdf", "Отчёт 2024.pdf"),
        ("../x.txt", "x.txt"),
        ("../../etc/passwd", "passwd"),
        ("/abs/evil.txt", "evil.txt"),
        ("a\\b\\c.txt", "c.txt"),
        ("nul\x00byte.txt", "nulbyte.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("two\r\nlines.txt", "twolines.txt"),
        ("\u2067hidden\u2069\u200d.txt", "hidden.txt"),
        ("\x1b[31mred.txt", "[31mred.txt"),
        ("\u202e", FILE_ID),
        ("..", FILE_ID),
        (".", FILE_ID),
        ("dir/", FILE_ID),
        ("", FILE_ID),
        (None, FILE_ID),
    ],
)
def test_the_saved_name_is_one_segment(original: str | None, saved_as: str) -> None:
    assert local_filename(original, FILE_ID) == saved_as
