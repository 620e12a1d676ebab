"""`ephyto study`: hub against bilateral exchange for analysts (issue 14).

What exists so far is the shared input of every later engine: the scenario (a TOML
file, `scenario`), the trade it generates (`trade`) and the counts of links, trust
relationships and keys each topology implies (`topology`). All three are pure.
"""
