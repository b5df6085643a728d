"""Runs sessions.ipynb in an ipykernel (nbclient): once whole, once without its last cell.

Prints each cell's output, warnings included, and what the kernel said at shutdown.
"""

import copy
import sys

import nbformat
from nbclient import NotebookClient

nb = nbformat.read("sessions.ipynb", as_version=4)
unclosed = copy.deepcopy(nb)
unclosed.cells = unclosed.cells[:-1]  # never closed: the kernel just shuts down

for title, book in (("whole notebook", nb), ("without the closing cell", unclosed)):
    print(f"-- {title}")
    NotebookClient(book, timeout=60, kernel_name="python3").execute()
    for i, cell in enumerate(book.cells, 1):
        for out in cell.get("outputs", []):
            text = out.get("text") or "".join(out.get("traceback", [])) or str(out.get("data"))
            print(f"cell {i} [{out.get('name', out['output_type'])}]: {text.strip()}")
sys.stdout.flush()
