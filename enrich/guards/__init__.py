"""Checks on every draft before a person sees it. A failed check is a named flag stored
with the draft; nothing is dropped and nothing passes silently.

Guards (the name is what the ledger and the review page show):

    schema     a field enrich does not write, a wrong type, a requested field missing
    length     empty, too short or too long for [guards] min_chars / max_chars
    html       tags or attributes outside the allow-list removed (the clean copy is kept)
    grounding  a number, unit or model code that is not in the product data
    contact    a web address, e-mail address or phone number not in the product data
    injection  the draft follows or repeats an instruction hidden in the product data,
               or reads like a model talking ("as an AI", role tags, a refusal)
    duplicate  the description nearly repeats another product's draft
    sync_rules a field ``enrich sync`` would call missing (same as the name, too short, a
               placeholder, supplier boilerplate; see ``sync_rules.py``)
    input      the product's own data has a problem sync recorded (an instruction hidden in
               it, two values for one quantity, a bad weight or price, markup in the name,
               a duplicate SKU: ``inputs.py``); the draft waits for a person

Each check is one pass over the draft and the source with precompiled regexes, so a
draft costs O(its length + the product's length); the duplicate check adds a few
indexed lookups (see ``duplicates.py``).

``check_draft`` (``draft.py``) runs them all on one draft. The input checks sync runs on
every product (``inputs.py`` and what it uses) import nothing heavier than themselves, so a
page reader process starts without the draft checks' configuration, ledger and HTML cleaner.
"""
