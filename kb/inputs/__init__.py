"""The input files and the data excon ships: the `declarations.csv`, `licences.csv` and
`parties.csv` contracts and their validated, atomic loads (`load`), the reference data (HS 2022,
ISO 3166: `reference`) and the synthetic demo set (`demo`, with the
words of its trade in `demo_words`).

May import `dsl` and `kb.store` (the tables a load writes into); nothing above.
"""
