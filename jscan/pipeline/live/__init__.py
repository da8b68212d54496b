"""Watching a run: the block receipts (`receipt`), the terminal's progress line
(`progress`), and the live scan page on the Dask dashboard (`page`, its scheduler plugin;
`livepage`, its client side; `browser`, the page in headless Chromium)."""
