"""What a stack costs a month: a dated price table, the billable things a render declares, and their sum.

``table`` reads the price data (``prices.yaml``), ``inventory`` finds what is billed in rendered objects,
``estimate`` prices it (per model, per pool, in total, at the autoscalers' min and max), ``report`` and
``chart`` show it, ``delta`` compares two estimates (the PR comment) and ``budget`` hands the figure to the
policy pack's monthly-budget rule.
"""
