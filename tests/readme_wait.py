"""Wait until a server started by a README command answers at its URL (used by test_readme.py).

    python readme_wait.py URL PID

Exit 0 once the URL gives any HTTP answer below 500; 1 if the process PID ends first or nothing
answers within 15 minutes (the demo builds its city before it serves)."""

import os
import sys
import time
import urllib.error
import urllib.request


def main() -> int:
    url, pid = sys.argv[1], int(sys.argv[2])
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"the server ended before {url} answered", file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return 0 if answer.status < 500 else 1
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return 0
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    print(f"nothing answered at {url} within 15 minutes", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
