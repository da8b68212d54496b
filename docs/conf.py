"""Sphinx configuration of jscan's documentation: the PyData theme (as xarray, dask and zarr),
Markdown pages through MyST, the API reference from the docstrings, and a gallery whose
scripts run during the build (sphinx-gallery)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from jscan import __version__

project = "jscan"
release = __version__
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "gallery/GALLERY_HEADER.rst"]
myst_heading_anchors = 3
default_role = "code"  # `name` in a docstring reads as code
html_theme = "pydata_sphinx_theme"
html_title = f"jscan {release}"
html_theme_options = {"navigation_with_keys": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
sphinx_gallery_conf = {
    "examples_dirs": "gallery",
    "gallery_dirs": "auto_gallery",
    "filename_pattern": r"/plot_",  # every gallery script runs during the build
    "download_all_examples": False,
    "abort_on_example_error": True,
    "remove_config_comments": True,
}
suppress_warnings = ["myst.header"]
