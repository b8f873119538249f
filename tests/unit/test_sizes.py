"""Byte sizes as the export panel and the standby's lag show them."""

from __future__ import annotations

import pytest

from nvadmin.files.sizes import byte_size


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 bytes"),
        (1023, "1,023 bytes"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (5 * 1024**2, "5.0 MB"),
        (3 * 1024**3, "3.0 GB"),
        (2 * 1024**4, "2.0 TB"),
        (3000 * 1024**4, "3,000.0 TB"),
    ],
)
def test_sizes_read_as_people_write_them(count: int, text: str) -> None:
    assert byte_size(count) == text
