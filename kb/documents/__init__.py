"""Documents: `excon docs`, a printable HTML document of one rulebook (`html`, with its Jinja2
templates).

May import `dsl` and `kb.store`; nothing else of `kb`.
"""
