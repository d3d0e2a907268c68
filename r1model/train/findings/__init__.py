"""R1's findings as chains, one module per finding; CHAINS is every chain by name (r1model.train.chains' r1-mini
and long2short, then each module's CHAIN). A module defines CHAIN (r1model.train.chains.Chain) with its
`summarise` (comparison.json, see r1model.train.chains) and `verdict`; add its name to MODULES.

Imports without torch (the lab lists and validates chains with it)."""
from __future__ import annotations

import importlib

from r1model.train.chains import CHAINS as _BUILT_IN, Chain

MODULES: tuple[str, ...] = ("cold_start", "weak_base", "distill_mini", "language_mixing", "prm_vs_orm",
                              "mcts_vs_sampling")

CHAINS: dict[str, Chain] = dict(_BUILT_IN)
for _name in MODULES:
    _chain = importlib.import_module(f"{__name__}.{_name}").CHAIN
    CHAINS[_chain.name] = _chain
