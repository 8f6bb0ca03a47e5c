"""English sentences for the synthetic speech corpus, written for this package.

Two sources: :data:`HANDWRITTEN`, a list of varied sentences (statements, questions,
numbers, names, long and short), and a seeded template grammar (subject, verb phrase,
object, adverbial, plus question and compound forms) that :func:`generate_sentences`
expands into as many distinct sentences as needed. :func:`sentence_pool` joins both.
"""

from __future__ import annotations

import numpy as np

HANDWRITTEN: tuple[str, ...] = (
    "The morning train to the coast was late again today.",
    "Please put the blue folder back on the top shelf.",
    "I never thought the old bridge would last this long.",
    "Could you tell me where the nearest post office is?",
    "We planted tomatoes, beans and a row of sunflowers in May.",
    "The meeting has been moved to half past three on Thursday.",
    "She found an old map folded inside the library book.",
    "Turn left at the bakery and keep walking until you see the river.",
    "It rained so hard that the football match was cancelled.",
    "My brother fixed the kitchen tap with a borrowed wrench.",
    "The museum opens at nine and closes at five in winter.",
    "Nobody expected the quiet student to win the debate.",
    "A cup of hot tea is the best cure for a cold afternoon.",
    "The pilot announced that we would land twenty minutes early.",
    "Why does the cat always sleep on the warmest chair?",
    "Seven hundred people signed the letter in a single week.",
    "The recipe calls for two eggs, a spoon of honey and some flour.",
    "He whistled a cheerful tune while painting the fence.",
    "The lighthouse keeper watched the storm roll in from the west.",
    "Remember to switch off the lights before you leave.",
    "Our neighbours are building a wooden shed behind their garage.",
    "The children laughed when the puppy chased its own tail.",
    "Is this the bus that goes to the central station?",
    "The orchestra tuned their instruments before the concert began.",
    "Fresh snow covered the valley by the time we woke up.",
    "I would like a window seat if one is still available.",
    "The scientist measured the temperature every hour for a month.",
    "Grandmother keeps her letters in a tin box under the bed.",
    "The shop on the corner sells newspapers, stamps and sweets.",
    "Heavy traffic slowed us down on the way to the airport.",
    "They spent the whole weekend repairing the sailing boat.",
    "What time does the last ferry leave the island?",
    "The farmer counted forty sheep grazing on the hillside.",
    "A strong wind blew the leaves across the empty playground.",
    "The new bakery makes the best bread in the whole town.",
    "Please speak a little louder, the room is quite noisy.",
    "The detective noticed a muddy footprint near the door.",
    "Our team finished the project two days ahead of schedule.",
    "The clock in the hall stopped at exactly midnight.",
    "She practised the piano for an hour every evening.",
    "The river flooded the meadow after the spring storms.",
    "I left my umbrella on the train this morning.",
    "The students were asked to write an essay about their town.",
    "Bright lanterns lit the narrow streets during the festival.",
    "Do you know how many stations there are on this line?",
    "The carpenter measured the table twice before cutting the wood.",
    "A small boat drifted slowly towards the harbour.",
    "The teacher read a story about a giant who loved flowers.",
    "We could hear the waves crashing against the rocks all night.",
    "The garden gate squeaks every time somebody opens it.",
    "Two owls were calling to each other in the dark forest.",
    "The price of apples went up after the dry summer.",
    "He forgot his keys and had to climb through the window.",
    "The library will be closed for repairs until next Monday.",
    "Have you ever seen a rainbow after a thunderstorm?",
    "The engineer explained how the old water mill worked.",
    "A parcel arrived for you while you were out.",
    "The mountain path was steep, rocky and covered in mist.",
    "They celebrated the victory with a picnic in the park.",
    "The radio played an old song that my father used to sing.",
    "My sister can solve a crossword puzzle in ten minutes.",
    "The baker starts work at four o'clock every morning.",
    "Somebody left a bicycle leaning against the church wall.",
    "The fishermen returned with nets full of silver fish.",
    "Please write your name and address in capital letters.",
    "The hotel room had a view of the lake and the mountains.",
    "A flock of geese flew south over the village.",
    "The doctor said that I should drink more water.",
    "Our flight was delayed because of fog at the airport.",
    "The painter mixed yellow and blue to make a bright green.",
    "How long does it take to walk to the top of the hill?",
    "The market is busiest on Saturday mornings.",
    "He wrapped the present in brown paper and tied it with string.",
    "The wind turbines turned slowly on the distant ridge.",
    "Three candles flickered on the kitchen table.",
    "The guide pointed out a castle on the far side of the valley.",
    "I have been learning to play the guitar since January.",
    "The bus driver waited for the old man to find his seat.",
    "The soup needs a little more salt and pepper.",
    "We watched the sunset from the top of the lighthouse.",
    "The photographer asked everyone to stand a bit closer.",
    "A thick fog rolled in from the sea just after dinner.",
    "Which of these two coats do you think is warmer?",
    "The gardener trimmed the hedges into perfect squares.",
    "Our class visited a factory that makes glass bottles.",
    "She wrote the answer on the board in large letters.",
    "The cathedral bells rang out across the sleepy town.",
    "Nine out of ten people preferred the second design.",
    "He balanced a stack of plates on one hand.",
    "The kettle whistled loudly in the empty kitchen.",
    "Everyone cheered when the runner crossed the finish line.",
    "The old sailor told stories about distant islands.",
    "Please close the door quietly, the baby is asleep.",
    "The price includes breakfast, dinner and a guided tour.",
    "A squirrel buried nuts all over the front lawn.",
    "The concert hall was filled with more than a thousand people.",
    "Where did you put the scissors after you used them?",
    "The ice on the pond was too thin to walk on.",
    "My uncle grows peppers in a greenhouse behind his cottage.",
    "The actors rehearsed the final scene until late at night.",
)

_SUBJECTS = (
    "The old farmer",
    "My younger sister",
    "A tired engineer",
    "The quiet librarian",
    "Our new neighbour",
    "The village baker",
    "A curious child",
    "The ship's captain",
    "The history teacher",
    "A young musician",
    "The night nurse",
    "My best friend",
    "The taxi driver",
    "A famous painter",
    "The hotel manager",
    "The team captain",
    "An elderly gentleman",
    "The postman",
    "A clever student",
    "The head chef",
    "The mayor of the town",
    "A travelling salesman",
    "The museum guide",
    "My grandfather",
    "The shy photographer",
    "A busy journalist",
    "The park ranger",
    "The bus conductor",
)
_VERB_PHRASES = (
    "carried",
    "painted",
    "repaired",
    "found",
    "described",
    "forgot",
    "borrowed",
    "sold",
    "cleaned",
    "opened",
    "measured",
    "photographed",
    "hid",
    "delivered",
    "ordered",
    "discovered",
    "returned",
    "wrapped",
    "polished",
    "examined",
    "lost",
    "packed",
    "noticed",
    "collected",
)
_OBJECTS = (
    "a wooden chair",
    "the broken clock",
    "an old violin",
    "the red umbrella",
    "a basket of apples",
    "the heavy suitcase",
    "a letter from abroad",
    "the garden gate",
    "a bunch of keys",
    "the silver teapot",
    "a map of the island",
    "the kitchen window",
    "a box of candles",
    "the green bicycle",
    "a pair of boots",
    "the village notice board",
    "a jar of honey",
    "the rusty anchor",
    "a stack of newspapers",
    "the blue kite",
    "a loaf of bread",
    "the tiny telescope",
    "a bag of flour",
    "the lost puppy",
)
_ADVERBIALS = (
    "before breakfast",
    "in the pouring rain",
    "after the long meeting",
    "on a cold winter evening",
    "without saying a word",
    "near the old harbour",
    "just before midnight",
    "at the edge of the forest",
    "during the summer holidays",
    "in front of the town hall",
    "with great care",
    "on the way home",
    "early on Sunday morning",
    "behind the railway station",
    "while everyone was asleep",
    "in less than an hour",
    "for the second time this week",
    "under the bright street lamps",
    "next to the river",
    "as the sun went down",
)
_QUESTION_WORDS = ("Why", "When", "Where", "How")
_CONNECTIVES = ("and then", "but later", "because", "so", "while")
_CLAUSES = (
    "the weather changed",
    "everyone went home",
    "the lights went out",
    "the shop was already closed",
    "nobody could find the key",
    "it started to snow",
    "the bells began to ring",
    "the music stopped",
    "the train finally arrived",
    "the children were laughing",
)


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:]


def _template(rng: np.random.Generator) -> str:
    """One sentence from the grammar; the form is drawn first, then its slots."""
    pick = lambda words: words[rng.integers(len(words))]  # noqa: E731
    subject, verb, obj = pick(_SUBJECTS), pick(_VERB_PHRASES), pick(_OBJECTS)
    form = rng.integers(4)
    if form == 0:  # statement with an adverbial
        return f"{subject} {verb} {obj} {pick(_ADVERBIALS)}."
    if form == 1:  # fronted adverbial
        adverbial = pick(_ADVERBIALS)
        return f"{adverbial[0].upper()}{adverbial[1:]}, {_lower_first(subject)} {verb} {obj}."
    if form == 2:  # question
        return f"{pick(_QUESTION_WORDS)} did {_lower_first(subject)} say that {obj} was missing?"
    return f"{subject} {verb} {obj}, {pick(_CONNECTIVES)} {pick(_CLAUSES)}."  # compound


def generate_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct sentences from the template grammar, the same for the same seed."""
    rng = np.random.default_rng(seed)
    out: dict[str, None] = {}  # insertion-ordered set
    tries = 0
    while len(out) < n:
        out.setdefault(_template(rng))
        tries += 1
        if tries > 50 * n + 1000:  # the grammar has far more than any sane n
            raise ValueError(f"the template grammar cannot make {n} distinct sentences")
    return list(out)


def sentence_pool(n_generated: int = 2000, seed: int = 0) -> list[str]:
    """The hand-written sentences followed by ``n_generated`` grammar sentences (distinct)."""
    pool = dict.fromkeys(HANDWRITTEN)
    for sentence in generate_sentences(n_generated + len(HANDWRITTEN), seed):
        if len(pool) >= len(HANDWRITTEN) + n_generated:
            break
        pool.setdefault(sentence)
    return list(pool)
