"""``python -m sb3_causal.zoo``: the zoo's ``train`` with sb3-causal's algorithms; usage errors in one line."""

from __future__ import annotations

import sys

from sb3_causal.zoo import require_zoo_extra


def main() -> None:
    try:
        require_zoo_extra()
    except ImportError as exc:
        sys.exit(f"error: {exc}")
    from sb3_causal.zoo.manager import train
    from sb3_causal.zoo.register import ZooUsageError

    try:
        train()
    except ZooUsageError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
