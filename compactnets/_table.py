"""Plain aligned text tables for the command line."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """Align columns; ``align`` is one character per column, ``l`` or ``r`` (default: text left,
    numbers right)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    if align is None:
        first = rows[0] if rows else ["" for _ in headers]
        align = "".join("r" if isinstance(v, (int, float)) else "l" for v in first)
        align = "".join("r" if _looks_numeric(cells, i) else a for i, a in enumerate(align))

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if a == "r" else v.ljust(w) for v, w, a in zip(values, widths, align, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def _looks_numeric(cells: list[list[str]], col: int) -> bool:
    values = [r[col] for r in cells if r[col] not in ("", "-")]
    return bool(values) and all(
        v.lstrip("+-").replace(",", "").replace(".", "").replace("%", "").rstrip("KMG").isdigit() for v in values
    )


def human(value: float | None, unit: str = "") -> str:
    """3,504,872 -> '3.505M'; None -> '-'."""
    if value is None:
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.3f}{suffix}{unit}"
    return f"{value:.0f}{unit}"
