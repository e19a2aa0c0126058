"""Chinese as well as English: the words of the published pages and of the command line
(`catalog`: one catalogue of English phrases and their Chinese, with a test that every phrase
the pages mark has its Chinese), and findings' explanations in Chinese (`explain`), from the
rulebook's own Chinese wording (`title zh`, `then … zh`, `explain zh`, the items' and
instruments' Chinese names) and the standard forms of the notes the compiler writes.

It imports nothing of kb's other packages: `kb.screen` (`excon screen --lang zh`) and
`kb.publish` (the language switch of the pages) both use it.
"""

from kb.i18n.catalog import LANGUAGES, gettext, outcome_word
from kb.i18n.explain import ChineseWords, explanation_zh

__all__ = ["LANGUAGES", "ChineseWords", "explanation_zh", "gettext", "outcome_word"]
