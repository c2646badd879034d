"""Words of the synthetic corpus: concepts of the kind COCO captions mention, with synonyms.

Each line is `kind: name[/synonym...] ...`; the first word names the concept.
"""

from __future__ import annotations

_CONCEPTS = """
object: dog/puppy/pup cat/kitten horse/pony bird/parrot sheep/lamb cow/cattle elephant bear
object: zebra giraffe person/man/woman child/kid/boy/girl surfer skier skateboarder player
object: frisbee kite ball/soccerball skateboard/board surfboard skis snowboard umbrella
object: bicycle/bike motorcycle/motorbike car/automobile bus truck/lorry train/locomotive
object: boat/ship airplane/plane/jet bench chair/seat couch/sofa bed table/desk laptop
object: computer/pc keyboard phone/cellphone television/tv clock vase book/novel cup/mug
object: bottle bowl plate sandwich pizza cake donut/doughnut banana apple orange broccoli
object: carrot hotdog sink refrigerator/fridge oven microwave toilet toothbrush teddybear
object: backpack handbag/purse suitcase/luggage tie hat/cap glasses/sunglasses racket bat
object: glove helmet tree/trees flower/flowers fence sign/signboard hydrant lamp window door
object: tent flag statue fountain bridge tower cow boat kayak/canoe wagon/cart sled
object: lion tiger monkey/ape duck goose pigeon/dove deer rabbit/bunny squirrel fox wolf
object: camel owl penguin dolphin whale fish cookie bread/loaf salad soup cheese steak
scene: beach/seashore/shore kitchen park/garden street/road field/meadow/grass snow/slope
scene: ocean/sea/waves lake/pond river city/downtown mountain/hill forest/woods desert
scene: airport runway station/platform office bedroom bathroom/restroom livingroom market
scene: restaurant/cafe playground stadium/arena zoo farm/barn parkinglot sidewalk/pavement
scene: court harbor/marina highway/freeway alley library classroom museum garage
attribute: red green blue yellow white black brown orange/tangerine pink purple gray/grey
attribute: large/big/huge small/little/tiny old/vintage young wooden/wood metal shiny
attribute: striped spotted fluffy/furry wet muddy colorful/colourful empty crowded/busy
attribute: sunny cloudy snowy rainy dark bright tall short
action: running/jogging jumping/leaping sitting standing lying/laying eating/feeding
action: playing riding/driving flying/soaring swimming/paddling walking/strolling sleeping
action: catching/grabbing throwing/tossing holding/carrying looking/watching parked
action: surfing skiing skating cooking cutting/slicing reading talking waiting crossing
action: climbing drinking smiling
"""

FILLER = [
    "a",
    "an",
    "the",
    "on",
    "in",
    "at",
    "with",
    "of",
    "and",
    "is",
    "are",
    "near",
    "next",
    "to",
    "by",
    "some",
    "two",
    "three",
    "its",
    "their",
    "there",
    "while",
    "under",
    "over",
    "behind",
    "front",
    "top",
    "side",
    "this",
    "that",
    "one",
    "another",
    "other",
    "several",
    "group",
]

# Tokens shaped like BERT WordPiece entries, so the engine's term-name codec meets them.
WORDPIECE_LIKE = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "##s",
    "##ing",
    "##ed",
    ".",
    ",",
    "e.g.",
    "u.s.",
    "...",
    "rock'n'roll",
    '"quoted"',
    "back\\slash",
    "naïve",
    "日本",
    "a b",
    "#1",
    "%",
    "50%",
    "c++",
    "a.b.c",
]


def concepts() -> list[tuple[str, str, list[str]]]:
    """(kind, name, synonyms) for every concept, in a fixed order, names unique."""
    seen: set[str] = set()
    out = []
    for line in _CONCEPTS.strip().splitlines():
        kind, _, words = line.partition(":")
        for group in words.split():
            name, *synonyms = group.split("/")
            if name in seen:
                continue
            seen.add(name)
            out.append((kind.strip(), name, synonyms))
    return out


KIND_TITLES = {
    "object": "objects",
    "scene": "places",
    "attribute": "attributes",
    "action": "actions",
}


def describe_world(width: int = 100) -> str:
    """What the demo (synthetic) corpus' captions can mention, read from `_CONCEPTS` and
    `FILLER`: its objects, places, attributes and actions (synonyms after '/'), and the
    other words a query may use. Any other word is not in the demo model's vocabulary."""
    import textwrap

    found = concepts()
    words = sum(1 + len(synonyms) for _, _, synonyms in found) + len(FILLER)
    lines = [
        f"The demo corpus: {len(found)} concepts, {words} words. Its captions mention these; a "
        "query's other words are not in the demo model's vocabulary (synonyms after '/')."
    ]
    for kind, title in KIND_TITLES.items():
        names = ["/".join([name, *synonyms]) for k, name, synonyms in found if k == kind]
        lines.append(f"{title} ({len(names)}): {', '.join(names)}")
    lines.append(f"other words ({len(FILLER)}): {', '.join(FILLER)}")
    return "\n".join(
        textwrap.fill(line, width=max(40, width), subsequent_indent="  ") for line in lines
    )
