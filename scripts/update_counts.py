"""Write ``compactnets/models/counts.json``: every registered model's params, MACs and MAdds at its card's input size.

``compactnets list`` reads them instead of counting the zoo each time (about 30 s on one core); it counts a model
itself where the stored entry was made for another input size, class count or convention. Re-run this after
changing a model or its card: ``tests/models/test_zoo.py`` fails on any stored count that differs from a fresh one.

    make counts    # or: python scripts/update_counts.py
"""

from __future__ import annotations

from compactnets.complexity import COUNTS_FILE, write_card_counts

if __name__ == "__main__":
    print(f"wrote {write_card_counts()} models' counts to {COUNTS_FILE}")
