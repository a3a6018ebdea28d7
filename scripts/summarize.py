#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Count tests from meson testlog.json files: each Criterion test counts on its own
(from its "Synthesis" line), any other test as one. Prints 'N passed, N failed'."""
import json
import re
import sys

SYNTH = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")


def count(path):
    passed = failed = 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
            # Criterion prints its Synthesis line on stderr.
            m = SYNTH.search((t.get("stdout") or "") + (t.get("stderr") or ""))
            if m:
                tested, passing = int(m.group(1)), int(m.group(2))
                passed += passing
                failed += tested - passing
                if not ok and tested == passing:
                    failed += 1  # the runner itself failed (crash, timeout)
            elif ok:
                passed += 1
            else:
                failed += 1
                print(f"FAILED: {t.get('name')} ({t.get('result')})", file=sys.stderr)
    return passed, failed


def main():
    passed = failed = 0
    for path in sys.argv[1:]:
        p, f = count(path)
        passed += p
        failed += f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
