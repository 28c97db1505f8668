"""Balancing: costs, the cost graph, scaling, the local algorithm, the global solver, ``balance()`` and metrics."""
