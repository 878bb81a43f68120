"""Generate the small sample catalogue shipped in ``data/sample`` (deterministic, seed 7).

40 items in four themes, each with a title, description, tags, a generated 64x64 PNG and a
1-second generated WAV; a few items lack an image or audio on purpose, to show how items with a
missing modality are indexed; and ``events.csv``, an interaction log of 80 users. Run
``python -m mosaicrec.data.make_sample [OUT_DIR] [--events-only]``.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

THEMES = {
    "ocean": {
        "colors": [(10, 60, 140), (40, 140, 200), (230, 220, 180)],
        "mood": "calm",
        "items": [
            ("Morning Tide", "Quiet waves roll onto an empty sandy beach at sunrise."),
            ("Storm Over the Bay", "Dark clouds and crashing waves batter the harbour wall."),
            ("Coral Garden", "Bright fish swim between corals in clear tropical water."),
            ("Lighthouse Night", "A lighthouse beam sweeps across a calm moonlit sea."),
            ("Surf Session", "Surfers ride tall blue waves off a rocky point."),
            ("Whale Song", "A humpback whale sings deep under the open ocean."),
            ("Tidal Pools", "Crabs and starfish hide in rock pools at low tide."),
            ("Sailing South", "A small sailboat crosses the sea under a steady wind."),
            ("Foggy Pier", "An old wooden pier fades into thick sea fog."),
            ("Deep Blue", "Sunlight fades into the dark blue depths of the sea."),
        ],
    },
    "forest": {
        "colors": [(20, 90, 40), (90, 160, 70), (120, 80, 40)],
        "mood": "peaceful",
        "items": [
            ("Birdsong at Dawn", "Songbirds call from the treetops as the forest wakes up."),
            ("Pine Trail", "A narrow hiking path winds through tall pine trees."),
            ("Mossy Creek", "A clear stream trickles over mossy stones in the woods."),
            ("Autumn Canopy", "Red and golden leaves cover the forest floor in autumn."),
            ("Owl Watch", "An owl watches silently from an oak branch at dusk."),
            ("Rain in the Woods", "Soft rain falls on ferns and leaves in a green forest."),
            ("Mushroom Ring", "Small mushrooms grow in a circle on the damp ground."),
            ("Mountain Meadow", "Wildflowers bloom in a sunny meadow above the trees."),
            ("Woodpecker", "A woodpecker drums on a hollow tree trunk."),
            ("Campfire Evening", "Hikers sit around a crackling campfire in the forest."),
        ],
    },
    "city": {
        "colors": [(60, 60, 70), (200, 60, 160), (240, 200, 60)],
        "mood": "busy",
        "items": [
            ("Rush Hour", "Cars and buses crowd a busy downtown street at rush hour."),
            ("Neon Alley", "Pink and yellow neon signs glow in a rainy alley at night."),
            ("Subway Platform", "A train pulls into a crowded underground subway station."),
            ("Rooftop Jazz", "A saxophone player performs jazz on a city rooftop."),
            ("Street Market", "Vendors sell fruit and spices at a noisy street market."),
            ("Skyline at Dusk", "Glass towers reflect the orange sky over the skyline."),
            ("Taxi Horns", "Yellow taxis honk in a traffic jam on a wide avenue."),
            ("Night Cafe", "People talk over coffee in a warm cafe on a city corner."),
            ("Construction Site", "Cranes and drills work on a new tower downtown."),
            ("Bridge Lights", "A suspension bridge lit up over the river at night."),
        ],
    },
    "space": {
        "colors": [(5, 5, 20), (80, 40, 140), (250, 250, 255)],
        "mood": "mysterious",
        "items": [
            ("Nebula Dream", "Purple gas clouds of a distant nebula glow among stars."),
            ("Moon Landing", "An astronaut steps onto the grey dusty surface of the moon."),
            ("Saturn Rings", "The rings of Saturn shine in the light of the far sun."),
            ("Starfield", "Thousands of stars fill the black sky of deep space."),
            ("Comet Pass", "A bright comet with a long tail crosses the night sky."),
            ("Red Planet", "Dust storms sweep across the red deserts of Mars."),
            ("Space Station", "A space station orbits high above the blue earth."),
            ("Black Hole", "Light bends around a black hole at the centre of a galaxy."),
            ("Aurora", "Green northern lights ripple across the polar night sky."),
            ("Rocket Launch", "A rocket lifts off in a burst of fire and smoke."),
        ],
    },
}
SAMPLE_RATE = 16_000


def _image(theme: dict, rng: np.random.Generator) -> np.ndarray:
    """A 64x64 RGB picture: a vertical gradient between theme colours plus random blobs."""
    top, bottom, accent = (np.array(c, dtype=float) for c in theme["colors"])
    t = np.linspace(0, 1, 64)[:, None, None]
    img = np.broadcast_to(top * (1 - t) + bottom * t, (64, 64, 3)).copy()
    yy, xx = np.mgrid[0:64, 0:64]
    for _ in range(int(rng.integers(2, 6))):
        cy, cx, r = rng.integers(0, 64, 2).tolist() + [int(rng.integers(3, 12))]
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = accent
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _audio(theme_name: str, rng: np.random.Generator) -> np.ndarray:
    """One second of sound in the theme's character: surf noise, chirps, horns or a drone."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    if theme_name == "ocean":  # slowly swelling low-passed noise
        noise = np.convolve(rng.normal(0, 1, t.size), np.ones(40) / 40, mode="same")
        wave = noise * (0.6 + 0.4 * np.sin(2 * np.pi * 0.8 * t))
    elif theme_name == "forest":  # rising bird chirps
        wave = np.zeros_like(t)
        for start in rng.uniform(0, 0.85, 4):
            seg = (t >= start) & (t < start + 0.12)
            f = 2500 + 8000 * (t[seg] - start)
            wave[seg] += np.sin(2 * np.pi * f * (t[seg] - start)) * np.hanning(seg.sum())
    elif theme_name == "city":  # two-tone horn over a low rumble
        f = rng.choice([330.0, 392.0, 440.0])
        wave = 0.5 * np.sign(np.sin(2 * np.pi * f * t)) * (t % 0.5 < 0.3)
        wave += 0.3 * np.sin(2 * np.pi * 55 * t)
    else:  # slow detuned drone
        f = rng.uniform(90, 140)
        wave = np.sin(2 * np.pi * f * t) + np.sin(2 * np.pi * f * 1.01 * t)
    wave = wave / (np.abs(wave).max() + 1e-9) * 0.8
    return (wave * 32767).astype(np.int16)


def make_sample(out: Path) -> Path:
    import soundfile as sf
    from PIL import Image

    rng = np.random.default_rng(7)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for t_index, (name, theme) in enumerate(THEMES.items()):
        for i, (title, description) in enumerate(theme["items"]):
            item_id = f"{name}-{i + 1:02d}"
            n = t_index * 10 + i
            image = audio = ""
            if n % 9 != 4:  # a few items without an image
                image = f"images/{item_id}.png"
                Image.fromarray(_image(theme, rng)).save(out / image, optimize=True)
            if n % 7 != 3:  # a few items without audio
                audio = f"audio/{item_id}.wav"
                sf.write(out / audio, _audio(name, rng), SAMPLE_RATE, subtype="PCM_16")
            rows.append(
                {
                    "id": item_id,
                    "title": title,
                    "description": description,
                    "tags": f"{name}|{theme['mood']}",
                    "image": image,
                    "audio": audio,
                    "category": name,
                    "mood": theme["mood"],
                    "year": 2015 + n % 10,
                }
            )
    with (out / "catalogue.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    mapping = {
        "payload": {"category": "keyword", "mood": "keyword", "year": "integer", "tags": "keywords"}
    }
    (out / "catalogue.mapping.json").write_text(json.dumps(mapping, indent=2) + "\n")
    return out / "catalogue.csv"


# Tastes of the sample's users. Besides one-theme fans, two groups follow a pattern that
# content cannot see: "night sailors" pair the ocean with space, "trail runners" the forest
# with the city; a trained model learns it from the events.
TASTES = [("ocean",), ("forest",), ("city",), ("space",), ("ocean", "space"), ("forest", "city")]
EVENT_TYPES = ["view", "click", "like", "like", "purchase"]


def make_events(out: Path, users: int = 80, seed: int = 11) -> Path:
    """``events.csv``: who did what with which item, when (ISO-8601), over four weeks.

    User ``ana`` is a night sailor who has only seen ocean items so far."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-03-01T08:00:00")
    rows = []
    for u in range(users):
        user = "ana" if u == 0 else f"user-{u:03d}"
        themes = TASTES[4] if u == 0 else TASTES[u % len(TASTES)]
        picks = [(t, int(i)) for t in themes for i in rng.choice(10, 6, replace=False)]
        if u == 0:
            picks = [("ocean", i) for i in (0, 2, 4, 5, 7)]
        rng.shuffle(picks)
        when = start + np.timedelta64(int(rng.integers(0, 14 * 24)), "h")
        for theme, i in picks:
            when = when + np.timedelta64(int(rng.integers(1, 30)), "h")
            kind = str(rng.choice(EVENT_TYPES))
            rows.append({"user_id": user, "item_id": f"{theme}-{i + 1:02d}", "type": kind,
                         "timestamp": f"{when}Z"})
        if rng.random() < 0.3:  # some users dislike an item of another theme
            other = str(rng.choice([t for t in THEMES if t not in themes]))
            rows.append({"user_id": user, "item_id": f"{other}-{int(rng.integers(1, 11)):02d}",
                         "type": "dislike", "timestamp": f"{when + np.timedelta64(2, 'h')}Z"})
    with (out / "events.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["user_id", "item_id", "type", "timestamp"])
        writer.writeheader()
        writer.writerows(rows)
    return out / "events.csv"


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    target = Path(args[0]) if args else Path(__file__).parent / "sample"
    if "--events-only" not in sys.argv:
        print(make_sample(target))
    print(make_events(target))
