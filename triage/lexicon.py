"""Versioned risk lexicon for the inline layer.

Rules match the *normalised* text (see ``triage.normalize``): lower case,
straight apostrophes, slang expanded ("kms" -> "kill myself"). Each rule has a
category, a level and C-SSRS flags. Rules of level "none" are *modifiers*
(a method, a timeframe, an ambiguous "i'm going to do it"): they only count when
a primary risk rule in the same message fired, and they raise its level through
the combination rules in ``triage.engine``.

Versioning: bump ``LEXICON_VERSION`` on every change (semver: patch = a phrase
added or fixed, minor = a new rule family or level change, major = a change to
categories or flags). The version is stored with every assessment so a decision
can be traced to the rules that made it. Add a test phrase in
tests/triage/test_inline.py with every rule you add.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triage.prefilter import required_alternatives

LEXICON_VERSION = "1.1.0"

CATEGORIES = (
    "suicidal_ideation",
    "self_harm",
    "abuse_disclosure",
    "harm_to_others",
    "third_party_risk",
    "eating_disorder",
)
# Evidence-only category: general distress (hopelessness, anxiety, bullying,
# loneliness). It routes a message to review but is not a risk category.
WELLBEING = "wellbeing"

FLAGS = ("wish_dead", "active_ideation", "method", "intent", "plan", "behaviour", "timeframe")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    category: str
    level: str
    pattern: re.Pattern[str]
    flags: tuple[str, ...] = ()
    subcategory: str | None = None
    # Negation / hypothetical / past-tense handling applies unless False. Rules
    # whose pattern already encodes the negation ("don't want to live") set False.
    contextual: bool = True
    # Every match meets one of these alternatives: a string of each of its sets
    # (triage.prefilter). () = always run the pattern.
    alternatives: tuple[tuple[frozenset[str], ...], ...] = ()


# Reusable fragments -----------------------------------------------------------
_SELF = r"(?:myself|my self|me)"
_REFL3 = r"(?:herself|himself|themselves|themself)"
_FUT = r"(?:going to|gonna|will|'ll|about to|planning to|plan to|planning on|decided to|ready to|want to|wanna|might|may|should just|could just|gotta|got to|need to)"
_FUT_STRONG = r"(?:going to|will|'ll|about to|planning to|plan to|planning on|decided to|ready to|tonight i|gonna)"
_FAMILY = r"(?:mum|dad|step ?dad|step ?mum|parents?|mum's (?:boyfriend|partner)|dad's (?:girlfriend|partner)|(?:mum|dad)'s new (?:partner|boyfriend|girlfriend)|new partner|uncle|aunt|auntie|grandad|grandpa|granddad|nan|gran|carer|foster (?:mum|dad|carer)|boyfriend|girlfriend|partner|teacher|coach|tutor|youth worker|priest|neighbour|cousin's boyfriend|brother's friend|(?:older|big) (?:brother|sister|cousin))"
_PERP = rf"(?:he|she|they|{_FAMILY}|my {_FAMILY}|this (?:man|guy|woman|boy|lad)|a (?:man|guy|woman|teacher|coach))"
_TP = r"(?:my (?:best |girl|boy)?(?:friend|mate|bestie|bff|bf|boyfriend|girlfriend|partner|brother|sister|bro|sis|cousin|mum|dad|classmate|flatmate|roommate|little brother|little sister|older brother|older sister|big brother|big sister|twin)|a (?:friend|mate|girl|boy|kid) (?:in|at|from) (?:my|our) (?:class|school|year|form|team)|someone (?:i know|in my (?:class|year|school)|from school|online)|this (?:girl|boy|kid|person) (?:i know|in my class|online)|(?:she|he|they))"
_METHOD = r"(?:pills|tablets|paracetamol|ibuprofen|meds|medication|overdose|knife|knives|blade|blades|razor|razors|rope|noose|belt|ligature|bridge|railway|train tracks|tracks|train|roof|cliff|ledge|balcony|motorway|bleach|gun|car exhaust)"
_TIME = r"(?:tonight|tomorrow|today|this (?:weekend|evening|afternoon|morning|week|friday|saturday|sunday)|right now|now|soon|later|after school|in (?:an|a few|\d+) (?:hours?|minutes?|mins?|days?)|when (?:everyone|they|my (?:mum|dad|parents)) (?:is|are|'s|'re) (?:asleep|out|gone)|before (?:school|morning)|on (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|my birthday)|by (?:the )?(?:morning|tomorrow|the weekend)|(?:at|by) midnight|one night)"
_MEDS = r"(?:medicine (?:cabinet|cupboard|box|drawer)|pills|tablets|paracetamol|ibuprofen|meds|medication|painkillers|sleeping pills|antidepressants|sertraline|fluoxetine|co-?codamol|insulin)"
_QTY = r"(?:(?:like|about|around|maybe|over|at least|nearly) )?(?:all||every|everything|the whole (?:box|packet|pack|bottle|lot)|loads of|a load of|lots of|a lot of|a bunch of|a handful of|heaps of|too many|as many|enough|\d{2,}|twenty|thirty|fifty|a whole (?:box|packet|pack|bottle) of|the rest of)"


def _r(
    id: str,
    category: str,
    level: str,
    pattern: str,
    flags: tuple[str, ...] = (),
    *,
    sub: str | None = None,
    contextual: bool = True,
) -> Rule:
    compiled = re.compile(pattern)
    return Rule(id, category, level, compiled, flags, sub, contextual, required_alternatives(compiled))


SI, SH, AB, HO, TP, ED = CATEGORIES
WB = WELLBEING

RULES: tuple[Rule, ...] = (
    # --- suicidal ideation: passive (wish to be dead) -------------------------
    _r("si.wish_dead", SI, "moderate", r"\bwish (?:i|that i) (?:was|were|'d been|had been|could be) (?:dead|never born|gone|not alive|not here|not born)", ("wish_dead",)),
    _r("si.wish_disappear", SI, "moderate", r"\bwish (?:i|that i) could (?:just )?(?:disappear|vanish|die|stop existing|not exist|not wake up|sleep forever|go to sleep and (?:never|not) wake up|fade away)", ("wish_dead",)),
    _r("si.want_disappear", SI, "moderate", r"\b(?:want|wanna|just want|like) to (?:disappear|vanish|stop existing|not exist|not be here|not wake up|sleep forever|fall asleep and (?:never|not) wake up|be gone)", ("wish_dead",)),
    _r("si.dont_want_live", SI, "moderate", r"\b(?:don't|do not|no longer|dont|not sure i|don't know if i|don't think i) (?:really )?(?:want|wanna) to (?:live|be alive|exist|be here|wake up|carry on|keep going|go on)", ("wish_dead",), contextual=False),
    _r("si.better_off", SI, "moderate", r"\b(?:better off (?:dead|without me|if i (?:was|were)n't|if i (?:died|was gone|wasn't here))|(?:be|been) (?:better|happier|easier) (?:off )?(?:without me|if i (?:wasn't|weren't|was not|were not) (?:here|around|alive|born)|if i (?:died|was gone|disappeared)))", ("wish_dead",)),
    _r("si.anyone_notice", SI, "moderate", r"\bwould (?:anyone|anybody|people|they) (?:even )?(?:notice|care|miss me)\b|\bif i (?:just )?(?:disappeared|vanished|wasn't here|died)\b", ("wish_dead",), contextual=False),
    _r("si.nobody_miss", SI, "moderate", r"\b(?:no one|nobody|no body) (?:would|will|'d) (?:care|notice|miss me|even notice|even care)(?: if i (?:died|was gone|disappeared|killed myself))?", ("wish_dead",), contextual=False),
    _r("si.no_point", SI, "moderate", r"\b(?:what's|what is|whats) the point (?:of|in) (?:living|life|being alive|going on|carrying on|me|anything|trying)|\bno (?:reason|point) (?:to|in) (?:live|living|go on|going on|carry on|be alive|keep going)|don't see (?:the|any) point (?:in|of) (?:living|life|being alive|anything)|life (?:isn't|is not|ain't) worth (?:living|it)", ("wish_dead",), contextual=False),
    _r("si.tired_living", SI, "moderate", r"\b(?:tired|sick|exhausted) of (?:living|being alive|life|existing|being here|everything)", ("wish_dead",)),
    _r("si.hope_die", SI, "moderate", r"\bhope (?:i|that i) (?:die|don't wake up|never wake up|get hit by|just die)", ("wish_dead",)),
    _r("si.shouldnt_exist", SI, "moderate", r"\bi (?:shouldn't|should not|don't deserve to) (?:be here|be alive|exist|live)", ("wish_dead",), contextual=False),
    _r("si.think_death", SI, "moderate", r"\b(?:think|thinking|thought|thoughts) (?:about|of) (?:death|dying|being dead|not being here|not existing|ending it|ending my life|ending things|suicide|killing myself|taking my (?:own )?life)", ("wish_dead",)),
    _r("si.done_life", SI, "moderate", r"\b(?:done with|finished with|over) (?:life|living|everything|it all|this world|existing)\b", ("wish_dead",)),
    # --- suicidal ideation: active ----------------------------------------------
    _r("si.want_die", SI, "high", r"\b(?:want|wanna|wanted|wanting|going|trying|ready|deserve|need) to (?:just )?(?:die|be dead|end it(?: all)?|end my (?:own )?life|end everything|end things|kill myself|take my (?:own )?life|commit suicide|not be alive|stop living|kill me)\b", ("active_ideation",)),
    _r("si.suicidal", SI, "high", r"\b(?:i'm|i am|i feel|feeling|been|i've been|getting|so|really|very|quite|a bit|feel) (?:really |so |very |quite |pretty )?suicidal\b|\bsuicidal (?:thoughts|feelings|urges)\b", ("active_ideation",)),
    _r("si.suicide_word", SI, "moderate", r"\b(?:kill myself|killing myself|end my life|ending my life|take my own life|commit suicide|suicide is (?:the|my) (?:only|answer|way))\b", ("active_ideation",)),
    _r("si.suicide_bare", SI, "low", r"\bsuicide\b"),
    _r("si.way_out", SI, "moderate", r"\b(?:only|one|easy|easiest|best) way out\b|\bway out of (?:this|everything|it all|life)\b|\bend the pain\b|\bmake (?:it|the pain) stop\b|\bno way out\b", ("wish_dead",)),
    _r("si.picked_day", SI, "none", r"\b(?:picked|chosen|chose|set|decided on|planned) (?:a |the )?(?:day|date|time|place|spot|night)\b", ("plan",)),
    _r("si.cant_go_on", SI, "moderate", r"\bcan't (?:go on|carry on|keep going|do this anymore|do this any more|take (?:it|this|much more|any more|anymore)|cope anymore|live like this)", ("wish_dead",), contextual=False),
    # --- intent / plan / behaviour ------------------------------------------------
    _r("si.intent", SI, "high", rf"(?:^|(?<=[.!?,;]\s)|\b(?:i'm|i am|i|im|i've|i have|and|so|just|honestly)\s)(?:really |actually |honestly |just )?{_FUT_STRONG} (?:to )?(?:just )?(?:kill myself|end (?:it|it all|my life|everything|things)|commit suicide|take my (?:own )?life|hang myself|overdose|suicide|die)\b", ("intent",)),
    _r("si.intent_take_qty", SI, "high", rf"\b(?:going to|gonna|will|'ll|about to|want to|wanna|could|might) (?:take|swallow|down|neck) {_QTY} (?:of )?(?:my |the |mum's |my mum's |dad's |my dad's |nan's |these |those )?(?:\w+ ){{0,2}}{_MEDS}", ("intent", "method")),
    _r("si.jump", SI, "high", r"\bjump (?:off|from|in front of|out of|onto) (?:a |the |my |our )?(?:\w+ ){0,3}(?:bridge|roof|building|train|cliff|car|bus|lorry|balcony|window|flats|tower|ledge|multi ?storey|car park|platform|tracks)", ("method", "intent")),
    _r("si.step_in_front", SI, "high", r"\b(?:step|walk|throw myself|lie down) (?:in front of|onto|on) (?:a |the )?(?:train|bus|lorry|car|tracks|railway|motorway)|\b(?:walk|wade|throw myself) (?:into|in) (?:the )?(?:sea|river|canal|lake|traffic|reservoir)\b(?! (?:for|with|to swim))", ("method", "intent")),
    _r("si.plan", SI, "high", r"\b(?:i've|i have|i|got|made|making|have) (?:got )?(?:a |the )?plan(?:ned)? (?:to|how|it|for|out|everything)|\b(?:know|knew|worked out|figured out) (?:exactly )?(?:how|where|when) (?:i'm|i am|i'll|i will|i would|i'd|i'm going to|to) (?:do it|die|kill myself|end it|going to do it)|\bknow exactly how\b", ("plan",)),
    _r("si.research", SI, "high", r"\b(?:research|researching|researched|looked up|looking up|googled|googling|searched|searching|reading about|read about|watching videos (?:on|about)) (?:how to (?:die|kill myself|overdose|hang|end it|commit)|(?:the )?(?:easiest|quickest|best|most painless|painless|least painful|fastest) (?:way|ways|method|methods) to (?:die|kill myself|end it|go)|ways to (?:die|kill myself|end it)|how (?:many|much) (?:pills|tablets|paracetamol) (?:it takes|to take|would|does it take|kill))|\bhow (?:many|much) (?:pills|tablets|paracetamol|ibuprofen) (?:would it take|does it take|would) (?:to )?(?:kill|die)|\b(?:easiest|quickest|most painless|painless) (?:way|ways) to (?:die|kill myself|end it)", ("plan", "method")),
    _r("si.notes", SI, "high", r"\b(?:written|wrote|writing|write|left|leaving) (?:a |my |some |the )?(?:goodbye|suicide|farewell|last) (?:note|notes|letter|letters|message|messages|video)|\b(?:goodbye|suicide) (?:note|letter)s?\b", ("behaviour", "plan")),
    _r("si.give_away", SI, "high", r"\b(?:giving|given|gave) (?:away )?(?:all )?my (?:stuff|things|belongings|pets?) away|\bgiving away my (?:stuff|things|belongings)|\bsaid (?:my )?goodbyes\b|\b(?:saying|said|say) (?:my )?goodbyes? to (?:everyone|everybody|my (?:family|friends|mum|dad)|all of you)\b", ("behaviour", "plan")),
    _r("si.stockpile", SI, "high", rf"\b(?:saving|saved|stockpiling|stockpiled|hoarding|collecting|hiding|hidden|stashing) (?:up )?(?:my |some |the |all my )?(?:\w+ )?{_MEDS}|\b(?:stopped|stop|not) taking my (?:meds|medication|pills|tablets) (?:and|so) (?:i'm |i am )?(?:saving|keeping|storing)", ("behaviour", "plan", "method")),
    _r("si.bought_method", SI, "high", r"\b(?:bought|buying|ordered|got|getting|found|have|carrying) (?:a |some |the |enough )?(?:rope|noose|ligature|paracetamol|sleeping pills|poison|bleach to drink)\b(?! for)", ("method", "plan")),
    _r("si.attempt", SI, "high", rf"\b(?:i've|i have|i|just|already) (?:just |already )?(?:taken|took|swallowed|had|downed|necked) (?:an )?(?:overdose|{_QTY} (?:of )?(?:my |the |mum's |my mum's |dad's )?(?:\w+ ){{0,2}}{_MEDS})|\b(?:i've|i have|i) (?:just )?overdosed|\b(?:drank|downed|necked) .{{0,40}}\b(?:with|and) (?:all |some |all of |some of |a load of |loads of |a handful of )?(?:my |the |mum's |dad's )?{_MEDS}\b|\btried to (?:kill myself|end my life|hang myself|overdose|take my (?:own )?life|end it)|\b(?:attempted|attempt) suicide|\bsuicide attempt", ("behaviour",)),
    _r("si.jump_bare", SI, "high", r"\b(?:i'm|i am|im) (?:going to|gonna|about to) jump(?=\s*(?:$|[.!?]|now\b|tonight|today|off\b|from\b))", ("method", "intent")),
    _r("si.method_ready", SI, "high", rf"\b(?:{_MEDS}|rope|noose|blade|razor) (?:are |is )?(?:all )?(?:lined up|counted out|all ready|ready to (?:go|take))\b", ("method", "plan")),
    _r("si.location", SI, "imminent", r"\b(?:i'm|i am|im) (?:currently |now |just |still )?(?:sat |sitting |standing |stood |waiting )?(?:on|at|by|near|next to|on top of|on the edge of|at the edge of|at the top of) (?:the |a |my )?(?:edge of (?:the )?|top of (?:the )?)?(?:bridge|railway(?: line| track| tracks)?|train tracks|tracks|level crossing|roof|rooftop|cliff|cliff edge|ledge|platform edge|motorway bridge|multi ?storey|car park roof|balcony edge|river)\b", ("method", "intent", "timeframe")),
    _r("si.farewell", SI, "high", r"\b(?:not|won't|will not|wont) (?:going to |gonna )?be (?:here|around|alive) (?:tomorrow|much longer|for much longer|for long|by (?:tomorrow|the morning|monday|the weekend)|anymore|any more|after tonight|next week)|\bthis is (?:my )?(?:final |last )?goodbye\b|\bthis is (?:my|the) (?:last|final) (?:message|post|text|time (?:i|you))\b|\bgoodbye (?:everyone|forever|world|all)\b|\b(?:by|this time) (?:tomorrow|tonight|next week) i'll be (?:dead|gone)|\bi'll be gone (?:soon|tomorrow|tonight|by)|\blast (?:night|day|time) (?:alive|on earth|you'll hear from me)|\btonight's the night\b|\bit'll all be over (?:soon|tonight|tomorrow)|\bso (?:it's|it is|it'll be) (?:all )?over\b", ("intent", "timeframe")),
    _r("si.im_going_to", SI, "none", r"\b(?:i'm|i am|im|i'll|i will) (?:going to|gonna) (?:do it|go through with it)|\b(?:i'm|i am|im) going to(?=\s*(?:$|[.!?]|lol|tbh|honestly))|\bhonestly (?:i'm|im|i am) going to\b|\bgo through with it\b", ("intent",)),
    _r("si.method_have", SI, "none", rf"\b(?:got|have|holding|with me|in my (?:hand|room|bag|pocket))\b.{{0,30}}\b{_METHOD}\b|\b{_METHOD}\b.{{0,20}}\b(?:with me|ready|in my (?:hand|room|bag|pocket)|next to me|here)\b", ("method",), contextual=False),
    _r("si.method_mention", SI, "none", rf"\b(?:hang|hanging|drown|drowning|jump|jumping|overdose|od|stab|slit|slitting|cut|cutting|bleed out)\b|\b{_METHOD}\b", ("method",), contextual=False),
    _r("si.timeframe", SI, "none", rf"\b{_TIME}\b", ("timeframe",), contextual=False),
    # --- self harm ------------------------------------------------------------
    _r("sh.self_harm", SH, "moderate", r"\bself harm(?:ing|ed|s)?\b|\bsh (?:again|urges?|scars?|relapse)\b"),
    _r("sh.act", SH, "moderate", r"\b(?:cut|cutting|cuts|burn|burning|burnt|burned|scratch|scratching|scratched|hit|hitting|punch|punching|bite|biting|hurt|hurting|harm|harming|bruise|bruising|starve|carve|carving|pull out my hair)\s+(?:myself|my (?:arms?|wrists?|legs?|thighs?|skin|stomach|hips?|body))\b", ("active_ideation",)),
    _r("sh.urge", SH, "moderate", r"\b(?:urges? to|relapsed|relapse|started cutting|been cutting|keep cutting|cutting again|cut again|scars on my|fresh cuts|hide my (?:cuts|scars|arms)|sharpener blade|razor blade)\b"),
    _r("sh.intent", SH, "high", rf"\b{_FUT} (?:cut|burn|hurt|harm) (?:myself|my (?:arms?|wrists?|legs?|thighs?))? ?(?:really |so |very |proper )?(?:deep|deeper|bad|badly|hard)\b|\bcut (?:really |so |very |too |proper )?(?:deep|deeper)\b|\b(?:slit|slice|slash) my (?:wrists?|throat|arms?)", ("intent", "method")),
    _r("sh.medical", SH, "imminent", r"\b(?:i'm|i am|im|it's|it is|still|won't stop|keeps|started) (?:still )?(?:bleeding|pouring blood)(?! nose)|\bbleeding (?:a lot|loads|heavily|badly|so much|everywhere|won't stop|wont stop|through)|\bcan't stop (?:the )?bleeding|\bcut (?:too|really|so) deep\b|\bneed(?:s)? stitches\b|\bblood (?:everywhere|won't stop|all over)\b|\blost (?:a lot of|so much|loads of) blood", ("behaviour",)),
    # --- third-party risk (a friend, sibling, classmate) ----------------------------
    _r("tp.suicidal", TP, "high", rf"\b(?:kill|killing|hang|hanging|drown) {_REFL3}\b|\bend (?:her|his|their) (?:own )?life\b|\btake (?:her|his|their) (?:own )?life\b|\b{_TP} (?:is|'s|are|'re|has been|have been|feels?|seems?|sounds?|said (?:she|he|they) (?:is|was|'s|feels?)) (?:really |so |very |feeling )?suicidal\b|\b{_TP} (?:says?|said|told me|texted|messaged|posted|keeps saying) (?:that )?(?:she|he|they)(?:'s| is| are|'re|'ll| will|'d| would)? (?:going to |gonna |wants? to |will |is going to )?(?:end it|die|kill|jump|overdose|not be here)", ("active_ideation",)),
    _r("tp.behaviour", TP, "imminent", rf"\b{_TP} (?:has |have |'s |just )?(?:took|taken|swallowed|downed|had) (?:an? )?(?:overdose|{_QTY} (?:of )?(?:\w+ ){{0,2}}(?:pills|tablets|paracetamol|meds|painkillers))|\b{_TP} (?:has |'s |just )?(?:overdosed|tried to (?:kill|hang|end|overdose))|\b(?:she|he|they)(?:'s| has| have|'ve)? (?:just )?(?:taken|took|swallowed) something\b|\b(?:she|he|they|my \w+)(?:'s| is| are|'re) (?:being sick|unconscious|not (?:waking up|breathing|responding)|passed out|bleeding (?:a lot|loads|badly))", ("behaviour",)),
    _r("tp.self_harm", TP, "moderate", rf"\b(?:cut|cutting|cuts|hurt|hurting|harm|harming|burn|burning|starve|starving) {_REFL3}\b|\b{_TP} (?:is|'s|are|'re|has been|have been|keeps?|started|is still) (?:self harming|cutting|self harm)|\b{_TP} self harms?\b", ("active_ideation",)),
    _r("tp.worry", TP, "moderate", rf"\b(?:worried|scared|afraid|frightened) (?:about|for|that) {_TP}(?: might| will| is going to| could)? (?:hurt|kill|do something|harm|end)", ()),
    # --- abuse disclosure -----------------------------------------------------------
    _r("ab.sexual_touch", AB, "high", r"\b(?:touch|touched|touching|touches|grope|groped|groping|gropes|fondl\w*|feel(?:s|ing)? me up|felt me up) (?:me|my (?:private|privates|body|bum|chest|breasts?|boobs|legs?|thighs?|down there|willy|penis|vagina))\b|\b(?:touched|touches|touching) me (?:where|down there|inappropriately|in places)", (), sub="sexual"),
    _r("ab.sexual_assault", AB, "high", r"\b(?:raped|rape me|raping me|sexually (?:assaulted|abused|abusing)|molest\w*|sexual abuse|abused me sexually)\b|\b(?:forced|forces|forcing|made|makes|pressured|pressures|pressuring) me (?:to )?(?:have sex|do (?:stuff|things|sexual \w+|it)|touch (?:him|her|them|it)|kiss (?:him|her)|give (?:him|her) (?:a )?\w+|watch porn|suck|perform|undress|take my clothes off|sleep with)|\b(?:had|have) sex with me (?:when|while|even though|but)|\bdidn't want (?:to have )?sex\b|\bsaid no but (?:he|she|they) (?:did|kept|carried)", (), sub="sexual"),
    _r("ab.physical", AB, "high", rf"\b{_PERP} (?:has |keeps |always |often |sometimes |just |again )?(?:hit|hits|hitting|hurt|hurts|hurting|beat|beats|beating|beaten|punch\w*|kick\w*|slap\w*|chok\w*|strangl\w*|shov\w*|throws? (?:things|stuff) at|burn\w*|whip\w*|belt\w*|batter\w*) me\b|\b(?:bruises|marks|black eye) (?:from|where|that) (?:he|she|they|my \w+)|\bscared (?:he|she|they|my \w+)(?:'ll|'s going to| will| is going to) (?:hurt|hit|kill|beat) me|\bscared (?:to go|of going) home\b|\bafraid (?:to go|of going) home\b", (), sub="physical"),
    _r("ab.threat_family", AB, "high", rf"\b{_PERP} (?:said|says|threatened|threatens|keeps saying|has said)(?: that)? (?:he|she|they)(?:'ll|'d| will| would| is going to| was going to| are going to) (?:kill|hurt|stab|beat|burn) (?:us|me|my (?:mum|dad|sister|brother|family)|mum|everyone|himself|herself)|\b(?:kill|hurt) us all\b|\bthreaten(?:s|ed|ing)? to (?:kill|hurt|stab|beat) (?:me|us|my (?:mum|dad|family))|\bif i (?:tell|told) (?:anyone|anybody|someone|the police|a teacher)\b.{{0,30}}\b(?:kill|hurt|beat|stab) (?:me|us|my)\b", (), sub="physical"),
    _r("ab.emotional", AB, "moderate", rf"\b{_PERP} (?:always |keeps |constantly |just )?(?:shouts|screams|yells|swears|shouting|screaming|yelling) at me\b|\b{_PERP} (?:always |keeps )?(?:calls?|calling|called) me (?:names|worthless|useless|stupid|fat|ugly|a mistake|pathetic|disgusting)|\b{_PERP} (?:says|said|tells me|told me) (?:i'm|i am|i was) (?:worthless|useless|a mistake|stupid|a waste|unwanted|disgusting)|\b{_PERP} (?:locks?|locked) me (?:in|out)\b|\b(?:not|never) allowed to (?:eat|leave the house|see my friends|go out)", (), sub="emotional"),
    _r("ab.neglect", AB, "high", r"\bno food (?:in|at) (?:the|my) (?:house|home|flat)\b|\b(?:mum|dad|parents?|they) (?:leave|left|leaves) me (?:home )?alone (?:for|all|every|overnight)|\b(?:kicked|thrown|threw) me out\b|\bnowhere (?:to|i can) (?:sleep|stay|go)(?: tonight)?\b|\bsleeping (?:rough|on the streets|in a park)\b|\bhaven't eaten (?:in|for) (?:days|\d+ days) because (?:there's|there is) no|\b(?:nobody|no one|no adult|mum|dad|my (?:mum|dad|parents?))(?:'s| has| have| hasn't| haven't)? (?:been|come) (?:home|back) (?:for|in) (?:days|\d+ days|a week|two days|three days)|\bno food for (?:me|us|my (?:little )?(?:brothers?|sisters?|siblings))\b", (), sub="neglect"),
    _r("ab.grooming", AB, "high", r"\b(?:asked|asks|asking|wants|wanted|keeps asking|pressuring|pressured) me (?:for|to send|to take|to show) (?:him |her |them )?(?:nudes|pics|photos|pictures|videos|a pic|a photo|a video)(?! of (?:my|the) (?:dog|cat|work|homework|drawing))|\b(?:keep|keeps telling me to keep|told me to keep|asked me to keep|said to keep) (?:it|this|us|our (?:chats?|relationship|messages|secret)|what we do|him|her) (?:a )?secret|\b(?:older|grown|adult) (?:man|guy|men|woman|bloke|person|lad).{0,40}(?:online|snapchat|snap|insta|instagram|discord|tiktok|roblox|game|messag)|\bwants (?:me )?to meet (?:up )?(?:in person|irl|alone)\b.{0,40}(?:online|older|\b(?:2\d|3\d|4\d)\b)|\b(?:he's|she's|he is|she is) (?:2\d|3\d|4\d) and (?:i'm|i am) (?:1[0-7]|\d)\b|\bsent me (?:pics|photos|pictures|videos) of (?:his|her) (?:private|privates|body|dick|penis)|\bsent me (?:sexual|dirty|explicit|sexy|rude|inappropriate) (?:messages|texts|pics|photos|pictures|videos|stuff)\b|\b(?:says?|said|told me|tells me) (?:not to|to not|i can't|i mustn't|i shouldn't) tell (?:my (?:parents|mum|dad|family|carer)|anyone|anybody|no one)\b", (), sub="exploitation"),
    _r("ab.sextortion", AB, "high", r"\b(?:blackmail\w*|threaten\w*|going to|gonna|will|said (?:he|she|they)(?:'ll| will| would|'d)) .{0,40}\b(?:nudes|pics|photos|pictures|videos|intimate)\b|\b(?:share|post|send|leak|expose|show) my (?:nudes|pics|photos|pictures|videos)\b.{0,40}(?:unless|if i don't|if i do not|to everyone|online|to my)|\bunless i (?:pay|send (?:more|money|him|her|them)|give)\b|\b(?:pay|send) (?:him|her|them) (?:money|£|\$)?.{0,20}(?:or (?:he|she|they)(?:'ll| will))", (), sub="sextortion"),
    _r("ab.criminal", AB, "high", r"\bcounty lines?\b|\b(?:run|running|doing|do) (?:a )?(?:line|lines|drops)\b(?! of)|\b(?:make|made|making|force|forced|forcing|makes|got|gets|want|wants|told) me (?:to )?(?:sell|carry|hold|deliver|move|stash|run|drop off|hide|look after) (?:drugs|weed|stuff|packages|a package|parcels|bags|food|gear|a knife|a gun|money)|\b(?:owe|owes|owed) (?:them|him|the olders|the gang|these people) (?:money|£?\d+|a debt)\b|\btrap house\b|\b(?:olders|elders|gang) (?:made|make|want|told|said|are making)\b|\b(?:groomed|exploited|trafficked)\b", (), sub="exploitation"),
    # --- harm to others -----------------------------------------------------------
    _r("ho.intent", HO, "high", rf"\b{_FUT} (?:hurt|stab|shoot|attack|beat up|batter|kill|murder|poison) (?:someone|somebody|people|everyone|them all|a teacher|(?:a |some )?(?:kids?|boys?|girls?|people) (?:at|in|from) (?:school|my class|college)|(?:the |those )?(?:people|kids|boys|girls|lads|ones) who (?:bullied|bully|hurt|picked on|pick on) me)\b|\bshoot up (?:the|my|our) (?:school|college|class)\b|\b(?:bring|bringing|take|taking|carry|carrying) (?:a |my )?(?:knife|gun|weapon|blade) (?:to|into|in) (?:school|college|class)\b|\b(?:make|making|made) (?:a )?(?:bomb|pipe bomb)\b", ("intent",)),
    _r("ho.kill_person", HO, "moderate", r"\b(?:want|wanna|going|gonna|'ll|will|could) (?:to )?(?:actually |seriously |really )?(?:kill|murder|stab|hurt|strangle) (?:him|her|them|my (?:brother|sister|mum|dad|teacher|step ?dad|step ?mum))\b", ("intent",)),
    _r("ho.how", HO, "none", r"\b(?:thought about how|worked out how|know how i'd do it|planned it|got a knife|have a knife|got a gun)\b", ("plan",), contextual=False),
    # --- eating disorder --------------------------------------------------------------
    _r("ed.restrict", ED, "moderate", r"\b(?:skipping|skip|skipped|missing|miss) (?:all my |my |most |some )?(?:meals|breakfast and lunch|lunch and dinner|food|eating)\b|\b(?:starving|starve|starved) myself\b|\b(?:haven't|have not|not|barely|hardly|didn't) (?:eaten|eat|ate)(?: anything| properly| much)? (?:in|for|since) (?:days|\d+ days|a week|two days|three days|ages)|\bonly (?:eat|eating|ate|eaten|having|had) (?:like |about |around )?\d+ (?:calories|cals|kcal)\b|\bfeel (?:so |really |still |really really )?(?:fat|huge|disgusting)\b|\b(?:count|counting|obsessed with) (?:every )?(?:calories|calorie)\b|\bscared (?:to|of) eat(?:ing)?\b|\bfeel (?:so )?(?:fat|disgusting|guilty|huge) (?:after|when|every time) (?:i )?eat|\bhate (?:my body|eating|food)\b|\bnot eating to (?:lose|get thin)|\b(?:to|so i can) (?:lose|drop) weight\b.{0,30}(?:skip|starv|not eat|sick|laxative)|\b(?:skip|starv|not eat|laxative)\w*.{0,30}\b(?:lose|drop) weight\b"),
    _r("ed.purge", ED, "moderate", r"\b(?:making|make|made) myself (?:sick|throw up|vomit|puke)\b|\bpurg(?:e|ing|ed)\b|\bbinge?(?:ing)? and (?:purg|throw)|\blaxatives?\b|\bthrow(?:ing)? up after (?:i eat|eating|meals|dinner|lunch)|\bpro ?(?:ana|mia)\b|\b(?:thinspo|meanspo|bonespo|ana coach)\b|\banorexi\w*|\bbulimi\w*|\beating disorder\b"),
    _r("ed.medical", ED, "high", r"\b(?:fainted|fainting|passed out|collapsed|heart (?:racing|palpitations|flutter\w*)|chest pains?)\b.{0,60}\b(?:not eating|haven't eaten|starv\w*|purg\w*|throw\w* up)|\b(?:not eating|haven't eaten|starv\w*|purg\w*)\b.{0,60}\b(?:fainted|fainting|passed out|collapsed|heart (?:racing|palpitations))", ("behaviour",)),
    # --- wellbeing / distress: review, not a risk category -----------------------------
    _r("wb.hopeless", WB, "moderate", r"\b(?:nothing|it|things|life) (?:ever |will ever |never )?(?:gets?|get|getting|going to get) (?:any )?better\b|\b(?:hopeless|worthless|useless|pointless|a failure|a burden|a waste of space|broken|empty inside|numb)\b|\bgiv(?:e|ing) up on (?:everything|life|myself)\b|\b(?:i'm|i am|feel like) giving up\b|\b(?:hate|hating|despise) myself\b|\bruin everything\b|\bi (?:always )?mess (?:everything|it all) up\b|\bcan't (?:cope|handle (?:it|this|anything|life)|go on like this)\b|\bfalling apart\b|\bwhat's wrong with me\b|\bfeel (?:so |really |just |completely )?(?:empty|numb)\b|\bhate (?:everything about |every part of )?(?:myself|me)\b|\b(?:sick|tired) of being me\b|\b(?:can't|cannot|don't think i can) keep going like this\b|\bwant (?:everything|it all|the pain|my thoughts) to (?:just )?stop\b|\b(?:feeling|been|felt) (?:really |so |very |pretty |super )?(?:low|down) (?:for|since|lately|recently|all)\b|\bcan't face (?:it|school|anyone|going|people|tomorrow)\b"),
    _r("wb.alone", WB, "moderate", r"\b(?:no one|nobody|no body|no1) (?:actually |really |even )?(?:to talk to|cares|understands|likes me|loves me|listens|wants me|would notice)\b|\bgot no (?:one|friends)\b|\bhave no (?:one|friends)\b|\bdon't (?:belong|fit in)\b|\b(?:don't|do not|never) (?:feel like|think) i (?:belong|fit in|matter)\b|\bfeel like i don't (?:belong|fit in|matter)\b|\b(?:so|really|always|feel|feeling|i'm|i am) (?:so |really |completely |totally )?(?:alone|lonely|isolated|invisible)\b|\bdon't have (?:any )?(?:one|anyone|friends)\b"),
    _r("wb.anxiety", WB, "moderate", r"\bpanic attacks?\b|\b(?:so |really |too |very )(?:anxious|scared|terrified)\b.{0,30}(?:can't|cannot|couldn't)|\bcan't (?:leave|go outside|get out of) (?:the house|bed|my room)\b|\banxiety (?:attacks?|is (?:so )?bad|is getting worse)\b|\b(?:i'm|i am|so|really|feel|feeling) (?:so |really )?(?:depressed|overwhelmed|trapped|miserable)\b|\bdepression\b|\bcan't stop crying\b|\b(?:cried|crying|cry) (?:myself to sleep|in the toilets?|every (?:day|night)|all (?:day|night)|again)\b|\bcan't (?:sleep|eat|breathe) (?:because|cos|at all|anymore)\b|\b(?:stressed|anxious|panicking|worried)\b.{0,30}\bcan't (?:breathe|cope|stop shaking)\b|\b(?:keep|keeps|kept) having (?:nightmares|flashbacks)\b"),
    _r("wb.bullying", WB, "moderate", r"\b(?:bullied|bullying|bully me|bullies me)\b|\b(?:push|pushes|pushing|shove|shoves|pick|picks|picking|gang up|ganging up) (?:me around|on me)\b|\b(?:laugh|laughs|laughing) at me\b|\b(?:told|tell|tells|telling|said|says) me to (?:kill myself|die|go die|kill yourself)\b|\b(?:everyone|they|people) (?:hates?|ignores?|excludes?) me\b|\b(?:spreading|spread) rumou?rs about me\b|\b(?:posting|posted|post|saying|said|writing|wrote|sharing) (?:mean|nasty|horrible|awful|cruel) (?:stuff|things|comments|pics|photos|memes) (?:about|of) me\b"),
    _r("wb.home", WB, "moderate", r"\b(?:parents|mum and dad|dad and mum|they) (?:fight|argue|fighting|arguing|scream at each other)\b.{0,40}(?:scare|scared|scares|frighten|all the time|every)|\bscared (?:of|at) (?:home|my (?:dad|mum|step ?dad|step ?mum))\b|\b(?:mum|dad|step ?dad|step ?mum|parents?)(?:'s)? (?:drinks?|drinking|gets? drunk|is drunk)\b.{0,30}(?:every|all the time|a lot|too much|angry|scary|shout|scream)|\b(?:go|going|went) hungry\b|\b(?:it|this) scares me\b"),
    _r("wb.tell_others_die", WB, "moderate", r"\b(?:kill yourself|go die|go kill yourself|you should die|hope you die|neck yourself|drink bleach)\b"),
)

# Harmless idioms that contain risk words. Masked (blanked) before rules run, so
# "i'd kill for a pizza" never reaches a rule. Each entry is a whole phrase, so a
# real disclosure elsewhere in the message is still seen.
IDIOMS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        r"\b(?:i'd|i would|i could|would|could) (?:literally )?kill (?:for|to have|to get|to be|to go|someone for)\b",
        r"\b(?:died|dying|dead|die|nearly died|almost died) (?:of |from |with )?(?:laughing|laughter|embarrassment|shame|cringe|boredom|of cuteness)\b",
        r"\bi'm (?:literally )?(?:dead|dying|deceased|crying)(?=\s*(?:😂|🤣|💀|lol|lmao|haha|$))",
        r"\b(?:dead|dying) (?:tired|funny|good|easy|hard|nice|bored|serious|proud|jealous|excited)\b",
        r"\b(?:phone|laptop|battery|charger|ipad|tablet|console|switch|xbox|ps5|controller|plant|plants|car|tv|wifi|headphones|airpods|computer|pc|mouse|keyboard|torch|fish)(?:'s| is| was| has| had| just)? (?:totally |completely |literally |just )?(?:died|dead|dying)\b",
        r"\bdying to (?:see|know|go|meet|try|watch|hear|tell|get|play)\b",
        r"\bto die for\b",
        r"\b(?:killed|kill|killing|smashed) (?:it|that|the (?:exam|test|audition|game|match|performance|presentation))\b",
        r"\bkill(?:ing)? (?:time|the lights|the vibe|two birds|the mood|my vibe|the engine)\b",
        r"\bkiller\b",
        r"\b(?:is|are|was|were|'s|'re|it's|its) (?:literally |actually |honestly |slowly |really )?killing (?:me|my \w+)(?! (?:with|physically))",
        r"\b(?:mum|dad|parents|teacher|coach|she|he|they)(?:'s| is|'re| are|'ll| will)? (?:going to |gonna |will )?(?:literally )?kill me (?:when|if|for|lol|haha|cos|coz|cause|because|i (?:forgot|lost|broke|missed|left|spilled|failed|didn't|haven't))\b",
        r"\bkill me now\b",
        r"\bif looks could kill\b",
        r"\bover my dead body\b",
        r"\b(?:dead ?line|dead end|dead on|dead set|deadpan|dead ringer)\b",
        r"\b(?:end it|end things|ended it|ended things|break up) with (?:him|her|them|my (?:boyfriend|girlfriend|bf|gf|partner|friend))\b",
        r"\bcould eat a horse\b",
        r"\b(?:i'd|i would) rather die than\b",
        r"\bsuicide (?:squad|mission|doors)\b",
        r"\b(?:shoot|shooting|shot) (?:my shot|hoops|a (?:message|text|dm|video|film|scene)|some hoops|photos|pics)\b",
        r"\b(?:cut|cutting) (?:my |the |his |her )?(?:hair|fringe|grass|cake|class|lesson|paper|out|down on|the line|corners)\b",
        r"\bworld war (?:one|two|1|2|i|ii)\b",
        r"\bbleeding (?:nose|heart|edge)|nose ?bleed\b",
    )
)

# Context cues. Looked for in the same clause, before the matched phrase.
NEGATION = re.compile(
    r"\b(?:never|not|no|no longer|don't|do not|didn't|did not|won't|will not|wouldn't|would not|shouldn't|isn't|aren't|wasn't|haven't|hasn't|doesn't|not going to|nothing to do with|stopped)\b(?:\s+\w+){0,4}\s*$"
)
NEGATION_BREAKERS = re.compile(r"\b(?:can't stop|cannot stop|can't help|not sure|don't know if|don't think i can|not going to lie|not gonna lie|ngl)\b")
HYPOTHETICAL = re.compile(
    r"\b(?:what if|hypothetically|imagine if|would you rather|in (?:the|a|this|my) (?:game|film|movie|book|novel|story|show|series|episode|song|essay|lesson|play|documentary|video|anime|manga)|character|fortnite|minecraft|roblox|call of duty|gta|zombies?|for (?:an|my) (?:essay|project|assignment|story))\b"
)
FICTION = re.compile(
    r"\b(?:learn(?:ed|t|ing)? about|lesson|in (?:art|history|english|re|pshe|science|biology)|documentary|article|the news|fundraiser|charity|awareness|in (?:the|a|this|my) (?:game|film|movie|book|novel|story|show|series|episode|song|play|documentary|anime|manga)|character|fortnite|minecraft|roblox|call of duty|gta|zombies?|for (?:an|my) (?:essay|project|assignment|story)|english lit|history lesson)\b"
)
PAST = re.compile(
    r"\b(?:used to|years ago|a long time ago|when i was (?:younger|little|a kid|small|in year \d+|\d+)|in the past|last year|back in (?:year \d+|primary)|no longer|not anymore|anymore\b(?=.*\b(?:don't|not))|(?:\d+|two|three|four|five|six) (?:months|years) (?:clean|free|ago))\b"
)
# Who the sentence is about: the last subject before a self-risk phrase decides
# whether it is the writer's risk or a third party's ("he's going to end it").
THIRD_SUBJECT = re.compile(
    r"\b(?:he|she|they|he's|she's|they're|they've|he'll|she'll|they'll|he'd|she'd|they'd|my (?:best |girl|boy)?(?:friend|mate|bestie|bff|bf|boyfriend|girlfriend|partner|brother|sister|bro|sis|cousin|classmate)|someone|somebody)\b"
)
FIRST_SUBJECT = re.compile(r"\b(?:i|i'm|i've|i'll|i'd|im|me|my self|myself)\b")
REPORTED = re.compile(
    r"\b(?:told me to|tell me to|tells me to|telling me to|said i should|says i should|keep saying i should|called me|sent me a message saying|commented)\b"
)
CLAUSE_SPLIT = re.compile(r"[.!?;\n,]+|\bbut\b|\bthough\b|\bhowever\b|\balthough\b")
