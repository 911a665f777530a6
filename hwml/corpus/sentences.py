"""A small English grammar of the project's own making for the built-in corpus.

Eight sentence templates (statements, questions, requests, exclamations) filled from word lists
give millions of different sentences. The lists are chosen so that every TIMIT-39 class occurs
often, the rare ones included: /oy/ (boy, coin, noise), /uh/ (book, woolly, sugar), /aw/ (house,
cloud), /th/ /dh/ (thimble, feather), /ch/ /jh/ (cherry, jacket), /ng/ (ring, young), /y/
(yellow, yogurt), /hh/ (hammer), /zh/ (treasure, folded into sh), /er/ (bird, turtle) and the
American flap /dx/ (water, letter, kitten, little, thirty).
"""

from __future__ import annotations

import random

NAMES = (
    "Judy", "Roy", "Joyce", "Hugo", "Theo", "Charlie", "George", "Helen", "Harry", "Ruth",
    "Beth", "Keith", "Sharon", "Jane", "June", "Oliver", "Maya", "Lloyd", "Rachel", "Vivian",
    "Zoe", "Nathan", "Martha", "Peter", "Kitty", "Walter", "Betty", "Owen", "Howard", "Eleanor",
    "Arthur", "Sophie", "Lucy", "Daniel", "Victor", "Gloria", "Yvonne", "Megan", "Hector",
    "Gordon", "Matthew", "Dorothy", "Patrick", "Natalie", "Joshua", "Heather",
)
NOUNS = (
    "water bottle", "letter", "kitten", "bottle", "butter dish", "potato", "tomato", "computer",
    "ladder", "boy", "toy", "coin", "oyster", "royal crown", "book", "cookie", "cushion", "hook",
    "woman", "wolf", "wooden spoon", "house key", "mouse", "cloud", "flower", "tower", "owl",
    "couch", "fountain pen", "thimble", "thread", "moth", "cloth", "toothbrush", "feather",
    "leather glove", "chair", "cheese", "chicken", "cherry", "watch", "peach", "bench", "jacket",
    "jelly", "juice", "orange", "engine", "cage", "page", "badge", "jar", "ring", "song", "king",
    "swing", "yogurt", "yoyo", "hat", "hammer", "horse", "honey", "helmet", "hedgehog",
    "treasure", "television", "measuring cup", "bird", "girl", "nurse", "shirt", "purse",
    "turtle", "burger", "curtain", "apple", "basket", "blanket", "bucket", "camera", "candle",
    "carrot", "dog", "egg", "fish", "glass", "guitar", "lamp", "lemon", "map", "needle", "pencil",
    "pillow", "radio", "robot", "rocket", "shoe", "table", "teapot", "ticket", "umbrella",
    "violin", "wagon", "whistle", "window", "zebra", "zipper", "puzzle", "kettle", "saucer",
)
PLURALS = (
    "boxes", "apples", "coins", "books", "cookies", "flowers", "cherries", "toys", "letters",
    "bottles", "potatoes", "pebbles", "jackets", "feathers", "horses", "oysters", "birds",
    "shirts", "oranges", "candles", "matches", "rings", "mice", "pages", "kittens", "turtles",
    "noisy geese", "thimbles", "cushions", "water jugs", "yellow buttons", "wooden hooks",
    "hungry ducks", "silver teapots", "paper hats", "golden treasures",
)
ADJECTIVES = (
    "little", "dirty", "heavy", "yellow", "purple", "orange", "brown", "beige", "golden",
    "wooden", "woolly", "noisy", "joyful", "royal", "tiny", "huge", "young", "hungry", "thirsty",
    "healthy", "thick", "thin", "smooth", "rough", "shiny", "cheap", "cheerful", "quiet",
    "lovely", "ugly", "fuzzy", "crooked", "soggy", "frozen", "broken", "tidy", "greasy", "muddy",
    "pointy", "bitter", "sweet", "sour", "usual", "pretty", "better", "fatter", "sugary",
)
VERBS = (  # (base form, past tense)
    ("carry", "carried"), ("paint", "painted"), ("find", "found"), ("bring", "brought"),
    ("push", "pushed"), ("pull", "pulled"), ("wash", "washed"), ("cook", "cooked"),
    ("buy", "bought"), ("hide", "hid"), ("watch", "watched"), ("enjoy", "enjoyed"),
    ("fix", "fixed"), ("throw", "threw"), ("move", "moved"), ("show", "showed"),
    ("check", "checked"), ("clean", "cleaned"), ("touch", "touched"), ("drop", "dropped"),
    ("measure", "measured"), ("borrow", "borrowed"), ("return", "returned"), ("choose", "chose"),
    ("avoid", "avoided"), ("boil", "boiled"), ("judge", "judged"), ("catch", "caught"),
    ("fetch", "fetched"), ("shake", "shook"), ("put", "put"), ("hug", "hugged"),
    ("sell", "sold"), ("taste", "tasted"), ("hang", "hung"), ("lift", "lifted"),
    ("open", "opened"), ("count", "counted"), ("weigh", "weighed"), ("point at", "pointed at"),
)
PREPOSITIONS = ("to", "from", "near", "behind", "under", "inside", "beside", "across", "into",
                "at", "through", "outside", "around", "toward")
PLACES = (
    "kitchen", "garden", "village", "city", "church", "beach", "station", "river", "mountain",
    "school", "garage", "theatre", "market", "harbour", "tower", "forest", "bakery", "meadow",
    "office", "attic", "hallway", "bathroom", "north gate", "south bridge", "hotel", "cottage",
    "water tower", "party", "butcher shop", "youth club", "boiler room", "cathedral", "playground",
    "city hall", "hospital", "library", "jungle", "bookshop", "dairy", "lighthouse",
)
TIMES = (
    "this morning", "on Thursday", "on Tuesday", "last month", "yesterday evening", "at noon",
    "in June", "after lunch", "before the party", "every year", "in the autumn", "at midnight",
    "later today", "next Saturday", "at thirty past two", "around eight o'clock",
    "during the storm", "in the winter", "on my birthday", "a little later", "at the weekend",
    "three hours ago", "this afternoon", "at dawn", "in August", "on the thirteenth of July",
)
ADVERBS = ("very", "rather", "quite", "pretty", "so", "really", "a little", "too", "awfully",
           "a bit", "surprisingly")
LINKS = ("looked", "seemed", "was", "felt", "sounded", "became", "stayed", "is")
REPORTS = ("said", "thought", "knew", "hoped", "guessed", "heard", "noticed", "wrote")
PRONOUNS = ("she", "he", "they", "we", "you", "I")
MODALS = ("would", "could", "should", "might", "will", "must", "can")
COUNTS = ("two", "three", "four", "six", "eight", "ten", "twelve", "thirty", "forty", "sixty",
          "seventy", "ninety", "a hundred", "several", "a few", "twenty", "eighty")
INTERJECTIONS = ("Oh", "Look", "Hey", "Wow", "Yes", "Well", "Hurry", "Listen", "Goodness")
WH = ("Why", "How", "When", "Where")
DETERMINERS = ("the", "a", "my", "your", "her", "his", "our", "their", "this", "that")


def _object(rng: random.Random) -> str:
    det = rng.choice(DETERMINERS)
    words = ([rng.choice(ADJECTIVES)] if rng.random() < 0.6 else []) + [rng.choice(NOUNS)]
    if det == "a" and words[0][0] in "aeio":
        det = "an"
    return " ".join([det, *words])


def _place(rng: random.Random) -> str:
    return f"{rng.choice(PREPOSITIONS)} the {rng.choice(PLACES)}"


def sentence(rng: random.Random) -> str:
    """One sentence of the grammar, drawn with `rng`."""
    name, obj, place, time = rng.choice(NAMES), _object(rng), _place(rng), rng.choice(TIMES)
    base, past = rng.choice(VERBS)
    template = rng.randrange(8)
    if template == 0:
        text = f"{name} {past} {obj} {place} {time}."
    elif template == 1:
        text = f"Did {name} {base} {obj} {place}?"
    elif template == 2:
        text = f"{obj} {rng.choice(LINKS)} {rng.choice(ADVERBS)} {rng.choice(ADJECTIVES)} {time}."
    elif template == 3:
        text = f"Please {base} {obj} {place}, {name}."
    elif template == 4:
        text = (f"{name} {rng.choice(REPORTS)} that {rng.choice(PRONOUNS)} {rng.choice(MODALS)} "
                f"{base} {obj} {time}.")
    elif template == 5:
        text = f"{rng.choice(WH)} {rng.choice(MODALS)} {name} {base} {obj} {place}?"
    elif template == 6:
        count, adj = rng.choice(COUNTS), rng.choice(ADJECTIVES)
        text = f"{count} {adj} {rng.choice(PLURALS)} were {place} {time}."
    else:
        text = f"{rng.choice(INTERJECTIONS)}, {name}! {obj[0].upper()}{obj[1:]} is {place}."
    return text[0].upper() + text[1:]


def sentences(n: int, seed: int | str) -> list[str]:
    """n sentences, the same for the same seed."""
    rng = random.Random(f"hwml-sentences:{seed}")
    return [sentence(rng) for _ in range(n)]
