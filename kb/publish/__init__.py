"""Publishing through Datasette: what the build writes for it (`metadata`), the Datasette plugin
and its templates (`datasette`), `excon serve` (`serve`), analysts' logins (`auth`), the served
snapshot's result cache (`result_cache`), the Chinese, pinyin and English search tables
(`search`) and analysts' decisions on findings (`decisions`).

May import `dsl`, `kb.store`, `kb.inputs` and `kb.screen`; never `kb.documents`.
"""
