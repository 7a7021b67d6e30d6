"""Run every theory check and print one table: `python -m urlvr_jax.theory.report [--quick]`."""

from __future__ import annotations

import argparse
import time

from urlvr_jax.theory.checks import Row, all_checks


def format_table(rows: list[Row]) -> str:
    """Plain-text table: claim | prediction | measured | holds."""
    head = ("claim", "prediction", "measured", "holds")
    cells = [head] + [(r.claim, r.prediction, r.measured, r.status) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = [" | ".join(c[i].ljust(widths[i]) for i in range(4)) for c in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer seeds and steps")
    args = parser.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()
    rows = all_checks(quick=args.quick)
    print(format_table(rows))
    findings = sum(not r.holds and r.finding for r in rows)
    failures = sum(not r.holds and not r.finding for r in rows)
    print(f"\n{sum(r.holds for r in rows)}/{len(rows)} hold; {findings} documented findings (NO (finding)); "
          f"{failures} unexpected failures ({time.perf_counter() - t0:.0f} s wall, "
          f"{time.process_time() - c0:.0f} s CPU)")


if __name__ == "__main__":
    main()
