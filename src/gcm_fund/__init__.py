"""gcm_fund: allocate a pooled migration-financing fund to States' capacity gaps.

The library is the product; the `gcm-fund` command is a thin layer over `gcm_fund.api`.
"""

__version__ = "0.1.0"
