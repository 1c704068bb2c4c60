"""The sidecar's footprint: idle RSS of the default configuration (no account: the local store
on, every cloud destination off), read from /proc 5 s after start, as the README measures it.

Issue 14 asks for 8 MiB. Measured on the 2-core build machine (kernel 6.18, whose page cache
maps executable pages in large folios) the release binary idles at 7.6–8.0 MiB: ~2.5 MiB its
own memory, ~5.3 MiB code and constant pages of the binary and libc. That holds for any build
of the same code, wherever it was built (fat LTO gives names that do not depend on the build's
paths: README, "Performance"). Without link/startup.order's layout it is ~18 MiB; with a partly
stale list (ThinLTO names from another build) it was 10.1 MiB. The bound leaves a 1 MiB margin,
so the test fails when the layout is lost or much of it goes stale, or start-up grows (an SDK
set up again at start, a buffer allocated eagerly).
"""

import re
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

IDLE_SETTLE_SECONDS = 5
BOUND_MIB = 9


def rss_kib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(value) for key, value in re.findall(r"^(VmRSS|RssAnon|RssFile):\s+(\d+) kB", status, re.M)}


def test_idle_rss_of_the_default_configuration_stays_under_the_bound(waggle_factory):
    waggle = waggle_factory()
    time.sleep(IDLE_SETTLE_SECONDS)
    assert waggle.alive()
    rss = rss_kib(waggle.pid)
    print(f"idle RSS: {rss}")
    assert rss["VmRSS"] <= BOUND_MIB * 1024, f"idle RSS {rss['VmRSS'] / 1024:.1f} MiB > {BOUND_MIB} MiB: {rss}"
    # waggle's own memory (heap, stacks) is the smaller part; the rest is the binary's code.
    assert rss["RssAnon"] <= 4 * 1024, rss
