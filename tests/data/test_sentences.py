from vae_audio.data.sentences import HANDWRITTEN, generate_sentences, sentence_pool


def test_pool_has_at_least_300_distinct_sentences():
    pool = sentence_pool()
    assert len(set(pool)) == len(pool) >= 300
    assert set(HANDWRITTEN) <= set(pool)
    assert len(set(HANDWRITTEN)) == len(HANDWRITTEN) >= 100


def test_sentences_are_plain_english_sentences():
    for s in sentence_pool(300):
        assert s[0].isupper() and s[-1] in ".?!", s
        assert 3 <= len(s.split()) <= 25, s


def test_generation_is_seeded():
    assert generate_sentences(50, seed=1) == generate_sentences(50, seed=1)
    assert generate_sentences(50, seed=1) != generate_sentences(50, seed=2)
    assert len(set(generate_sentences(400, seed=3))) == 400
