"""The injection guard: instructions hidden in product data are quarantined, never obeyed.

Product data is untrusted: a supplier's text may be a note to whoever (or whatever) writes
the copy. Three checks, each one regex pass over text that almost never matches:

- the *source* is searched for instruction-like text, in English, German, French and
  Spanish: an override ("ignore previous instructions", "ignoriere alle Anweisungen"), text
  addressed to an assistant, AI, model or writer ("note to the assistant:", "an die KI",
  "pour le rédacteur", "para el redactor"), an imperative about what the copy must say
  ("say so", "the description must mention", "erwähne", "écris que", "di que"), and role
  or system markers (``system:``, ``[INST]``, ``<|im_start|>``, "you are now"). Each hit is
  widened to its whole sentence: that sentence is *quarantined* (``Instruction.text``),
  left out of the facts grounding accepts and of what a writer may copy;
- a draft that reproduces a quarantined sentence (a run of words, a phrase it demands, or a
  word found only there) is flagged as having followed it (``obeyed``);
- the *draft* is searched for text no product copy contains: "as an AI", "ignore previous
  instructions", chat role tags, the fence's tag name, refusals (``output_marker``).

The phrasings and the recall / false-flag figures on the fixture catalogs are in
docs/guards.md (tests/test_guards_injection.py holds them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from enrich.guards.prefilter import FirstClauses, Prefilter, marked
from enrich.guards.text import squash

# Verbs that say what to put in the copy (the payload follows them).
_VERBS = (r"write|say|output|print|put|add|include|insert|mention|use|respond\s+with|"
          r"reply\s+with|return|answer\s+with|title\s+it|call\s+it|show|display|state|claim")
# Who an instruction is addressed to, per language.
_ADDRESSEE_EN = (r"(?:ai|a\.i\.|assistant|ai\s+assistant|model|language\s+model|llm|chatbot|bot|"
                 r"chatgpt|gpt(?:-?\d)?|claude|gemini|copilot|writer|copywriter|copy\s+writer|"
                 r"content\s+writer|generator|text\s+generator|seo\s+writer|"
                 r"whoever\s+writes\s+(?:this|the)\s+\w+)")
_ADDRESSEE_DE = (r"(?:ki|k\.i\.|assistent(?:en)?|assistentin|modell|sprachmodell|bot|chatbot|"
                 r"texter(?:in)?|autor(?:in)?|schreiber(?:in)?|redakteur(?:in)?)")
_ADDRESSEE_FR = (r"(?:ia|i\.a\.|assistant|assistante|mod[eè]le|bot|chatbot|r[ée]dacteur|"
                 r"r[ée]dactrice|concepteur[\s-]r[ée]dacteur)")
_ADDRESSEE_ES = (r"(?:ia|i\.a\.|asistente|modelo|bot|chatbot|redactor|redactora|escritor|"
                 r"escritora)")
_COPY_EN = (r"(?:description|copy|text|title|meta\s+description|listing|product\s+page|"
            r"summary|blurb|output|answer|response)")

_PATTERNS = [
    # -- overrides --------------------------------------------------------------------------
    r"\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:all\s+|any\s+)?(?:of\s+)?"
    r"(?:the\s+|your\s+|my\s+|these\s+|those\s+)?(?:previous\s+|prior\s+|above\s+|earlier\s+|"
    r"preceding\s+|system\s+|original\s+|other\s+|existing\s+)?(?:instructions?|rules|"
    r"directions|prompts?|guidelines|context|constraints)\b",
    r"\b(?:ignorier(?:e|en|t)?|vergiss|vergessen\s+sie|missachte)\s+(?:bitte\s+)?(?:alle\s+)?"
    r"(?:die\s+|deine\s+|ihre\s+)?(?:vorherigen\s+|bisherigen\s+|obigen\s+|fr[üu]heren\s+)?"
    r"(?:anweisungen|regeln|vorgaben|instruktionen|richtlinien)\b",
    r"\b(?:ignore[sz]?|oublie[sz]?|ne\s+tiens\s+pas\s+compte\s+des?)\s+(?:toutes\s+)?"
    r"(?:les\s+|tes\s+|vos\s+)?(?:instructions|consignes|r[èe]gles)\b",
    r"\b(?:ignora|ignore|ignoren|olvida|olvide|olviden)\s+(?:todas\s+)?(?:las\s+|tus\s+|sus\s+)?"
    r"(?:instrucciones|reglas|indicaciones)\b",
    # -- role and system markers ------------------------------------------------------------
    r"\binstead\s*,?\s*(?:" + _VERBS + r")\b",
    r"\byou\s+are\s+(?:now|no\s+longer)\b|\bfrom\s+now\s+on,?\s+(?:you|write|only)\b",
    r"\b(?:new|updated|real|actual|hidden|secret|additional)\s+instructions?\b",
    r"\bsystem\s+(?:prompt|message|instruction)\b|\bdeveloper\s+mode\b|\bjailbreak\b",
    r"(?:^|\n)\s*(?:#{1,4}\s*)?(?:system|assistant|developer|instruction|instructions)\s*:",
    r"#{2,}\s*(?:system|instruction|instructions|assistant)\b",
    r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>|</?\s*(?:system|assistant|instructions?)\s*>",
    r"\b(?:du\s+bist\s+(?:jetzt|nun|ab\s+sofort)|neue\s+anweisungen?|systemanweisung|"
    r"tu\s+es\s+(?:maintenant|d[ée]sormais)|nouvelles?\s+(?:instructions?|consignes?)|"
    r"ahora\s+eres|nuevas?\s+instrucci(?:ones|[oó]n))\b",
    # -- addressed to a model or a writer ---------------------------------------------------
    r"\b(?:note|message|instruction|instructions|hint|memo|attention|reminder|p\.?s\.?)\s+"
    r"(?:to|for)\s+(?:the\s+|any\s+|our\s+|an?\s+)?" + _ADDRESSEE_EN + r"\b",
    r"\b(?:dear|hey|hi|hello|attention|to\s+the|note\s+to)\s+" + _ADDRESSEE_EN + r"\s*[,:!]",
    r"(?:^|[.!?\n;]\s*)" + _ADDRESSEE_EN + r"\s*[,:]\s*(?:please\s+)?(?:\w+\s+){0,2}?(?:"
    + _VERBS + r"|ignore|make|describe|tell|do\s+not|don'?t|never|always|note)\b",
    r"\bif\s+you\s+are\s+(?:an?\s+)?(?:ai|a\.i\.|assistant|language\s+model|llm|bot|"
    r"chatbot|model|writer|copywriter)\b",
    r"\b(?:when|while)\s+(?:you\s+(?:are\s+)?)?(?:writ|generat|draft|creat)(?:e|ing)\s+"
    r"(?:the\s+|this\s+|a\s+|any\s+)?(?:new\s+)?(?:product\s+)?" + _COPY_EN + r"\b.{0,60}?,\s*"
    r"(?:please\s+)?(?:" + _VERBS + r"|make|describe|call|be\s+sure|do\s+not|don'?t|never|"
    r"always)\b",
    r"\b(?:hinweis|nachricht|anweisung|notiz|bitte)\s+(?:an|f[üu]r)\s+(?:den\s+|die\s+|das\s+)?"
    + _ADDRESSEE_DE + r"\b",
    r"\b(?:liebe[rs]?|hallo|hey|an\s+die|an\s+den|an\s+das)\s+" + _ADDRESSEE_DE + r"\s*[,:!]",
    r"\bwenn\s+du\s+(?:eine\s+|ein\s+)?(?:ki|sprachmodell|assistent|bot|texter)\s+bist\b",
    r"\b(?:note|message|consigne|instruction|remarque)\s+(?:pour|[àa])\s+(?:l'|l’|le\s+|la\s+)?"
    + _ADDRESSEE_FR + r"\b",
    r"\b(?:ch[èe]re?|cher|bonjour|salut)\s+(?:l'|l’)?" + _ADDRESSEE_FR + r"\s*[,:!]",
    r"\bsi\s+tu\s+es\s+(?:une?\s+)?(?:ia|assistant|mod[eè]le|bot|r[ée]dacteur)\b",
    r"\b(?:nota|mensaje|instrucci[oó]n|aviso)\s+(?:para|a)\s+(?:el\s+|la\s+|los\s+)?"
    + _ADDRESSEE_ES + r"\b",
    r"\b(?:querid[oa]|hola|estimad[oa])\s+" + _ADDRESSEE_ES + r"\s*[,:!]",
    r"\bsi\s+eres\s+(?:una?\s+)?(?:ia|asistente|modelo|bot|redactor)\b",
    # -- imperatives about what the copy must say -------------------------------------------
    r"[;,:]\s*(?:please\s+)?(?:say|write|state|mention|claim)\s+(?:so|that|this|it)\b"
    r"\s*(?:[.!]|$|\n|in\b)",
    r"\b(?:the|your|this|in\s+the)\s+(?:product\s+)?" + _COPY_EN + r"\s+(?:must|should|has\s+to|"
    r"needs?\s+to|shall|is\s+to)\s+(?:always\s+|also\s+|clearly\s+)?(?:say|state|mention|"
    r"include|claim|read|contain|describe|call|list|stress|emphasi[sz]e|highlight|begin|"
    r"start|end)\b",
    r"\b(?:make\s+sure|be\s+sure|remember|don'?t\s+forget)\s+(?:to|that\s+you|you)\s+"
    r"(?:always\s+)?(?:say|write|state|mention|claim|describe|call|include|tell)\b",
    r"(?:^|[.!?\n]\s*)(?:please\s+)?(?:always\s+|also\s+)?(?:write|say|state|claim|mention|"
    r"tell\s+(?:customers|shoppers|buyers|readers|everyone)|describe\s+(?:it|this|the\s+product)"
    r"\s+as|call\s+(?:it|this)|present\s+(?:it|this)\s+as|advertise\s+(?:it|this)\s+as)\s+"
    r"(?:that\b|it\s+(?:is|has)\b|the\s+product\b|this\s+product\b|[\"“'‘])",
    r"(?:^|[.!?\n]\s*)(?:do\s+not|don'?t|never)\s+(?:mention|say|write|state|disclose|reveal|"
    r"tell)\s+(?:that|the|it|this|any)\b.{0,80}?\b(?:in\s+the\s+)?" + _COPY_EN + r"\b",
    r"\b(?:in|into)\s+(?:the|your|every|each)\s+(?:product\s+)?" + _COPY_EN + r",?\s+(?:always\s+)?"
    r"(?:write|say|state|mention|claim|include|add|put)\b",
    r"\b(?:schreib(?:e|en\s+sie)?|sag(?:e|en\s+sie)?|behaupte(?:n\s+sie)?|erw[äa]hn(?:e|en\s+sie)|"
    r"gib\s+an|betone)\s*,?\s+(?:bitte\s+)?(?:dass|das|es|unbedingt|immer|in\s+der)\b",
    r"\b(?:die\s+(?:produkt)?beschreibung|der\s+text|der\s+titel)\s+(?:muss|soll|sollte)\s+"
    r"(?:[\wäöüß]+\s+){0,5}?(?:enthalten|erw[äa]hnen|sagen|lauten|behaupten|nennen|angeben|"
    r"betonen|beginnen)\b",
    r"\b(?:[ée]cri[st]|[ée]crivez|dis|dites|mentionne[sz]?|affirme[sz]?|indique[sz]?|"
    r"pr[ée]cise[sz]?|pr[ée]sente[sz]?)\s+(?:que|qu'|qu’|bien\s+que|le\s+produit\s+comme|"
    r"toujours)\b",
    r"\b(?:la\s+description|le\s+texte|le\s+titre|la\s+fiche)\s+(?:doit|devra|devrait)\s+"
    r"(?:toujours\s+|bien\s+)?(?:dire|mentionner|indiquer|contenir|affirmer|pr[ée]ciser|"
    r"commencer)\b",
    r"\b(?:escribe|escriba|di|diga|menciona|mencione|indica|indique|afirma|afirme|asegúrate\s+"
    r"de\s+(?:decir|mencionar|escribir|indicar)|presenta)\s+(?:que|siempre|el\s+producto\s+como)"
    r"\b",
    r"\b(?:la\s+descripci[oó]n|el\s+texto|el\s+t[íi]tulo)\s+(?:debe|deber[íi]a|tiene\s+que)\s+"
    r"(?:siempre\s+)?(?:decir|mencionar|indicar|incluir|contener|afirmar|empezar)\b",
    # -- generalised forms: a strict addressee, an output verb, "you must write" ------------
    r"\b(?:a\.?i\.?|llm|chatgpt|gpt(?:-?\d\w*)?|language\s+model|copywriter|k\.?i\.?|"
    r"sprachmodell|i\.?a\.?)(?:\s+(?:instructions?|note|hint|anweisung|hinweis|"
    r"consigne|nota|instrucci[oó]n))?\s*[:,](?!\s*(?:yes|no|ja|nein|oui|non|s[ií]|on|off)\b)",
    r"\b(?:to|for|as)\s+the\s+(?:ai|a\.i\.|llm|language\s+model|assistant|model|writer|"
    r"copywriter|bot)\s+(?:writing|generating|that\s+writes|who\s+writes)\b",
    r"\bas\s+the\s+(?:ai|assistant|model|writer|copywriter|bot)\s*,",
    r"(?:^|[.!?\n]\s*)(?:respond|reply|answer)\s+(?:only\s+)?with\b|(?:^|[.!?\n]\s*)(?:output|"
    r"print|repeat)\s+(?:only|the\s+following|after\s+me)\b",
    r"(?:^|[.!?\n(]\s*)(?:override|instruction|instructions|anweisung|consigne|instrucci[oó]n)"
    r"\s*:",
    r"\byou\s+(?:must|should|have\s+to|need\s+to|are\s+to|shall)\s+(?:always\s+)?"
    r"(?:write|say|state|mention|claim|describe|call|include|tell|present|emphasi[sz]e)\b",
    r"\b(?:system\s+override|override\s*[-:\u2013])",
    r"\b(?:were|was|been|being)\s+(?:told|instructed|asked)\b.{0,40}?\b(?:before|earlier|"
    r"previously|above|so\s+far)\b",
    r"\b(?:attention|achtung)\s+(?:the\s+)?(?:ai|llm|gpt|chatgpt|ki|ia|model|assistant|bot|"
    r"writer|copywriter)\b(?:\s+\w+)?\s*[!:,]",
    r"\b(?:for|to)\s+(?:the\s+|any\s+|all\s+)?(?:ai|llm|gpt|chatgpt|chatbot|bot)s?\s+"
    r"(?:generating|writing|creating|that|who)\b",
    r"\b(?:ai|llm|gpt|chatgpt|copywriters?|ai\s+writers?|ki)\s+(?:should|must|shall|need\s+to|"
    r"have\s+to|soll(?:te)?|muss)\s+(?:always\s+|also\s+)?(?:write|say|state|mention|claim|"
    r"describe|call|include|tell|present|add|use|emphasi[sz]e|avoid|not)\b",
    r"\b(?:write|say|state|claim|mention)\s+(?:that\s+)?(?:the|this|it|its)\s+[^.;!?\n]{0,40}?"
    r"\b(?:is|are|has|have|was|weighs|lasts|comes|ships|contains)\b",
    r"(?:^|[.!?\n]\s*)tell\s+(?:customers|shoppers|buyers|readers|people|everyone|users|"
    r"visitors)\s+(?:that\s+|this\s+|it\s+|they\s+|we\s+|our\s+)",
    r"\b(?:ai|a\.i\.|model|assistant|writer|bot|llm|ki|ia)[\s-](?:note|hinweis|nota|notiz)\s*:",
    r"\b(?:pretend|imagine)\s+(?:that\s+)?(?:you\s+are|to\s+be|you're)\b|\bact\s+as\s+(?:an?\s+)?"
    r"(?:\w+\s+)?(?:ai|assistant|pirate|expert|copywriter|salesman)\b",
    r"\bwhoever\s+(?:writes|generates|creates|drafts)\b|\bfor\s+the\s+(?:text\s+)?generator\b",
    r"\breplace\s+the\s+(?:product\s+)?(?:name|title|description|text)\s+with\b",
]
SOURCE_INSTRUCTION_RE = re.compile("|".join(f"(?:{p})" for p in _PATTERNS),
                                   re.IGNORECASE | re.MULTILINE)
#: The words each pattern needs, read from the patterns: most text is ruled out by a few
#: set lookups instead of ~55 alternatives tried at every position (``guards.prefilter``).
_SOURCE_FILTER = Prefilter(_PATTERNS, re.IGNORECASE | re.MULTILINE)
_TARGET_RE = re.compile(
    r"\b(?:(?:the|this|your|every|each|its|in\s+the|into\s+the)\s+(?:product\s+|meta\s+|"
    r"seo\s+)?(?:description|headline|title|listing|tagline|copy)s?|product\s+description|"
    r"meta\s+description|(?:generate|create|produce|write)\s+(?:the\s+|a\s+)?copy|"
    r"(?:die|der|den|in\s+der|in\s+die)\s+(?:produkt)?(?:beschreibung|[üu]berschrift)|"
    r"(?:la|le|dans\s+la)\s+(?:description|fiche(?:\s+produit)?)|"
    r"(?:la|el|en\s+la)\s+(?:descripci[oó]n|ficha))\b", re.IGNORECASE)
_TARGET_FILTER = Prefilter([_TARGET_RE.pattern], re.IGNORECASE)
#: Both filters' first clauses: one pass rules a product out of both.
_FIRST = FirstClauses(_SOURCE_FILTER, _TARGET_FILTER)
_COPY_VERB_RE = re.compile(
    r"\b(?:write|writes|say|says|state|states|mention|mentions|include|includes|claim|claims|"
    r"emphasi[sz]e|highlight|stress|present|describe|call|read|reads|use|insert|add|put|"
    r"contain|contains|list|needs?|requires?|says|starts?|begins?|schreib\w*|erw[äa]hn\w*|nenn\w*|sag\w*|beton\w*|enth[äa]lt\w*|"
    r"lauten|angeben|[ée]cri\w*|dis|dit|dire|mentionn\w*|indiqu\w*|pr[ée]cis\w*|affirm\w*|"
    r"escrib\w*|decir|diga|mencion\w*|indic\w*|afirm\w*)\b", re.IGNORECASE)
_IMPERATIVE_RE = re.compile(
    r"\b(?:must|should|shall|has\s+to|have\s+to|needs?\s+to|ensure|make\s+sure|be\s+sure|"
    r"please|always|never|do\s+not|don'?t|muss|soll|sollte|bitte|immer|niemals|unbedingt|"
    r"doit|doivent|devez|dois|toujours|jamais|veuillez|assurez|debe|debes|tiene\s+que|siempre|"
    r"nunca|por\s+favor|aseg[úu]rate|needs?|requires?|veuillez)\b"
    r"|(?:^|[.!?:;\n]\s*)(?:write|say|state|mention|include|claim|emphasi[sz]e|highlight|"
    r"present|describe|call|use|insert|add|put|list|generate|create|schreib\w*|erw[äa]hn\w*|"
    r"nenn\w*|[ée]cri\w*|mentionne\w*|indique\w*|escrib\w*|menciona\w*|indica\w*)\b",
    re.IGNORECASE)
_SENTENCE_RE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")


def _copy_orders(text: str) -> list[tuple[int, int]]:
    """Sentences that order what the copy must say: a copy target ("the description"), a
    copy verb and an imperative ("must", "please", a leading verb), all three together."""
    out: list[tuple[int, int]] = []
    for m in _SENTENCE_RE.finditer(text):
        sentence = m.group(0)
        if (_TARGET_RE.search(sentence) and _COPY_VERB_RE.search(sentence)
                and _IMPERATIVE_RE.search(sentence)):
            out.append((m.start(), m.start() + len(sentence.rstrip(".!?\n \t"))))
    return out


# A sentence ends at . ! ? or a line break followed by space, not inside "2.5" or "e.g.".
_SENTENCE_END_RE = re.compile(r"[.!?](?=\s|$)|\n")
_QUOTED_RE = re.compile(r"[\"“”«„'‘’]([^\"“”«»„'‘’\n]{3,200})[\"“”»'‘’]")
_AFTER_VERB_RE = re.compile(r"\b(?:" + _VERBS + r")\b\s*:?\s*(?P<rest>.+)", re.IGNORECASE)
_SET_RE = re.compile(r"\b(?:set|change|make)\s+(?:the\s+)?[\w ]{1,40}?\s+(?:to|=)\s+(?P<rest>.+)",
                     re.IGNORECASE)
# "the product is 500 W and waterproof; say so": the claim is the clause before "say so".
_SAY_SO_RE = re.compile(r"(?P<claim>[^:;.!?\n]{6,200})[;,:]\s*(?:please\s+)?(?:say|write|state|"
                        r"mention|claim)\s+(?:so|that|this|it)\b", re.IGNORECASE)
_CAPS_RE = re.compile(r"(?:[A-Z0-9][A-Z0-9%$€£!&+-]*[ \t]*){2,}")
_LEADING_RE = re.compile(r"^(?:(?:and|then|instead|now|only|just|the\s+words?|the\s+text|"
                         r"this|that|following|so)\b[\s,:]*)+", re.IGNORECASE)
_ECHO_WORD_RE = re.compile(r"\w+|%")
_ECHO_WORDS = 4
_STOP = frozenset({"a", "an", "the", "and", "or", "it", "this", "that", "text", "words",
                   "copy", "description", "product", "instead", "only", "so"})
# Words of the instruction itself, in every language: their presence in a draft proves
# nothing (a draft may well say "product"); distinctive words are the claims.
_INSTRUCTION_WORDS = frozenset("""
advertise after also always anweisung anweisungen anything asistente assistant
assistenten because been before beschreibung bitte call claim consigne copy copywriter
could customer customers dass debe decir describe descripción description descriptions
dire doit erwähne escribe everything field fields following from have hinweis ignore
ignoring immer include instrucciones instruction instructions just listing listings
make menciona mention mentionne mentions message model muss must never nicht nota note
notes only output para please pour present previous prior product producto products
produit produkt really redactor rules rédacteur sagen say says schreib schreibe
shoppers should siempre sollte something state sure tell text texter that their there
these this those title toujours when where which while whoever with would write writer
writes writing written écris
""".split())  # noqa: SIM905
_WORD_RE = re.compile(r"[^\W\d_]{6,}", re.UNICODE)

OUTPUT_MARKER_RE = re.compile(
    r"\bas\s+an?\s+(?:ai|a\.i\.|artificial\s+intelligence|(?:large\s+)?language\s+model|llm|"
    r"assistant)\b"
    r"|\bi(?:'m|\s+am)\s+(?:an?\s+)?(?:ai|a\.i\.|(?:large\s+)?language\s+model|assistant|"
    r"chatbot)\b"
    r"|\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+|your\s+|my\s+)?"
    r"(?:previous|prior|above|earlier|preceding|system)\s+(?:instructions|rules|directions|"
    r"prompts?)\b"
    r"|\bsystem\s+prompt\b"
    r"|<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>"
    r"|</?\s*(?:system|assistant|user|instructions?)\s*>"
    r"|untrusted_product_data"
    r"|(?:^|\n)\s*(?:system|assistant|user|human)\s*:"
    r"|\bi\s+(?:can(?:'|no)t|cannot|am\s+(?:unable|not\s+able)\s+to|won't)\s+"
    r"(?:help|assist|comply|do\s+that|provide|write|fulfil+)\b",
    re.IGNORECASE,
)

# Cheap substring pre-check (lower case) for the draft-side regex: a text without any of
# these cannot match it, and almost no copy has one, so the regex rarely runs at all.
_OUTPUT_HINTS = ("as a", "i'm", "i am", "ignor", "disregard", "forget", "system", "<|",
                 "[inst", "[/inst", "<<sys", "<</sys", "assistant", "user", "instruction",
                 "untrusted", "human", "i can", "i won")


def _may_hold(text: str, hints: tuple[str, ...]) -> bool:
    lower = text.lower()
    return any(h in lower for h in hints)


def has_instruction(text: str) -> bool:
    """Whether product data holds anything shaped like an instruction to a model or writer."""
    ready = marked(text)
    source = _SOURCE_FILTER.regex(text, ready)
    return (source is not None and source.search(text) is not None) or bool(
        _TARGET_FILTER.which(ready) and _TARGET_RE.search(text) and _copy_orders(text))


def may_hold_instructions(texts: Sequence[str]) -> bool:
    """False when ``find_instructions`` finds nothing in any of ``texts``, proven cheaply
    (one test for all of them, which is how sync checks a product's fields); True means
    "look": each text must still be searched."""
    ready = marked("\n".join(texts))
    if not _FIRST.any_in(ready):
        return False
    return bool(_SOURCE_FILTER.which(ready) or _TARGET_FILTER.which(ready))


@dataclass(frozen=True)
class Instruction:
    """An instruction found in the source: its sentence, quarantined, and what it demands."""

    text: str                   # the quarantined sentence(s), as written (spaces collapsed)
    context: str                # the same, lower case (with a little text before on its line)
    payloads: tuple[str, ...]   # what it demands, as written
    start: int = 0              # where the quarantined span starts in the text searched
    end: int = 0                # and where it ends (exclusive)


def _payloads(span: str, after: str) -> list[str]:
    found: list[str] = []
    found += [m.group(1) for m in _QUOTED_RE.finditer(span)]
    for regex in (_AFTER_VERB_RE, _SET_RE):
        m = regex.search(after)
        if m:
            found.append(_LEADING_RE.sub("", m.group("rest")))
    for m in _SAY_SO_RE.finditer(span):
        claim = re.sub(r"^.*?\b(?:assistant|ai|model|writer|copywriter|bot)\b\s*[:,]\s*", "",
                       m.group("claim"), flags=re.IGNORECASE)
        found.append(claim)
    found += [m.group(0) for m in _CAPS_RE.finditer(span)]
    out: list[str] = []
    for phrase in found:
        phrase = " ".join(phrase.strip(" \t,;:.!?\"'“”‘’«»").split())
        words = [w for w in re.findall(r"\w+", phrase.lower()) if w not in _STOP]
        if len(phrase) >= 4 and words and phrase.lower() not in {o.lower() for o in out}:
            out.append(phrase)
    return out


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence around ``text[start:end]``; a bare lead-in ("Note to the AI:") takes
    the sentence after it too, since that is what it introduces."""
    left = max((m.end() for m in _SENTENCE_END_RE.finditer(text, 0, start)), default=0)
    nxt = _SENTENCE_END_RE.search(text, max(start, end - 1))
    stop = nxt.end() if nxt else len(text)
    lead = text[left:nxt.start()].strip() if nxt else ""
    if nxt and (lead.endswith(":") or len(lead.split()) <= 4) and \
            len(text[end:nxt.start()].strip(" \t:,;-")) < 3:
        after = _SENTENCE_END_RE.search(text, stop)
        stop = after.end() if after else len(text)
    return left, stop


def find_instructions(text: str) -> list[Instruction]:
    """Instructions to a model or writer inside product data (usually none: one search)."""
    spans: list[list[int]] = []
    ready = marked(text)
    source = _SOURCE_FILTER.regex(text, ready)
    hits = [(m.start(), m.end()) for m in source.finditer(text)] if source else []
    if _TARGET_FILTER.which(ready) and _TARGET_RE.search(text):
        hits = sorted(hits + _copy_orders(text))
    for hit_start, hit_end in hits:
        start, stop = _sentence(text, hit_start, hit_end)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], stop)
        else:
            spans.append([start, stop, hit_end])
    found: list[Instruction] = []
    for start, stop, first_end in spans:
        while start < stop and text[start].isspace():
            start += 1
        span = text[start:stop]
        line = text.rfind("\n", 0, start) + 1
        context = text[max(line, start - 80):stop]
        found.append(Instruction(text=" ".join(span.split()), context=squash(context),
                                 payloads=tuple(_payloads(span, text[first_end:stop])),
                                 start=start, end=stop))
    return found


def quarantine(text: str) -> tuple[str, list[Instruction]]:
    """``text`` with its instruction sentences blanked (same length), and those sentences."""
    found = find_instructions(text)
    if not found:
        return text, []
    out = list(text)
    for inst in found:
        for i in range(inst.start, inst.end):
            if not out[i].isspace():
                out[i] = " "
    return "".join(out), found


def _words(text: str) -> list[str]:
    return _ECHO_WORD_RE.findall(text.lower())


def obeyed(draft_lower: str, instruction: Instruction, source_lower: str,
           spans_lower: str) -> tuple[str, str] | None:
    """(phrase, "payload" | "echo" | "word") when the draft follows or repeats the instruction.

    A payload or word counts only when the data uses it nowhere outside its instructions
    (``spans_lower`` holds them all): a product really named so is not evidence. An echo is
    four or more consecutive words of the quarantined sentence that the rest of the data
    does not also say.
    """
    outside = source_lower
    for span in spans_lower.split(" \n "):
        if span:
            outside = outside.replace(span, " ")
    for payload in instruction.payloads:
        lower = squash(payload)
        if lower in draft_lower and lower not in outside:
            return payload, "payload"
    words = _words(instruction.text)
    if len(words) >= _ECHO_WORDS:
        draft_words = " " + " ".join(_words(draft_lower)) + " "
        outside_words = " " + " ".join(_words(outside)) + " "
        for i in range(len(words) - _ECHO_WORDS + 1):
            window = " ".join(words[i:i + _ECHO_WORDS])
            if f" {window} " in draft_words and f" {window} " not in outside_words:
                return window, "echo"
    draft_set = set(_WORD_RE.findall(draft_lower))
    outside_set = set(_WORD_RE.findall(outside))
    for word in _WORD_RE.findall(instruction.text.lower()):
        if word in draft_set and word not in outside_set and word not in _INSTRUCTION_WORDS:
            return word, "word"
    return None


def output_marker(text: str) -> str | None:
    """Text no product copy contains ("as an AI", role tags, a refusal), or None."""
    if not _may_hold(text, _OUTPUT_HINTS):
        return None
    m = OUTPUT_MARKER_RE.search(text)
    return " ".join(m.group(0).split()) if m else None
