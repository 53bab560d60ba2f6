"""Container health probe for the retrain image (it ships no curl): exit 0 when a URL answers 2xx.

Usage: python healthcheck.py URL [TIMEOUT_SECONDS]
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def probe(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """GET the URL; healthy when it answers a 2xx status within the timeout."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return False, f"{url} answered {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"{url} unreachable: {exc}"
    return 200 <= status < 300, f"{url} answered {status}"


def main(argv: list[str]) -> int:
    """Probe argv[0] (timeout argv[1], default 5 s); the message goes to `docker inspect` via stderr."""
    if not 1 <= len(argv) <= 2:
        sys.stderr.write("usage: healthcheck.py URL [TIMEOUT_SECONDS]\n")
        return 2
    healthy, message = probe(argv[0], float(argv[1]) if len(argv) == 2 else 5.0)
    sys.stderr.write(message + "\n")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
