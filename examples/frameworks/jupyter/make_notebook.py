"""Writes sessions.ipynb (kept as code here, so the cells are easy to read and review)."""

import nbformat

CELLS = [
    # 1: the async client, kept open across cells
    "import stripe_sessions as ss\n\n"
    "stripe = ss.AsyncClient()  # api_key from $STRIPE_API_KEY, base_url from $STRIPE_BASE_URL",
    # 2: top-level await (the kernel's own event loop)
    "session = await stripe.customer_sessions.create(\n"
    '    customer="cus_NffrFeUfNV2Hib", components={"pricing_table": {"enabled": True}}\n'
    ")\n"
    'print("async:", session.expires_at.isoformat(), session.request_id)',
    # 3: the sync client in a notebook (works; it blocks the kernel's loop while it waits)
    "sync = ss.Client()\n"
    "session = sync.customer_sessions.create(\n"
    '    customer="cus_NffrFeUfNV2Hib", components={"pricing_table": {"enabled": True}}\n'
    ")\n"
    'print("sync:", session.expires_at.isoformat(), session.request_id)',
    # 4: close both when done
    "await stripe.aclose()\nsync.close()\nprint('closed')",
]

nb = nbformat.v4.new_notebook()
nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbformat.write(nb, "sessions.ipynb")
