import re

import numpy as np
import pytest

from workbench.explore.head_stats import head_statistics, merge_words, statistics_table, word_groups

TOKENS = ["[CLS]", "the", "play", "##ing", "[SEP]"]


def hand_made_maps():
    """(1 layer, 2 heads, 5, 5): head 0 attends to itself, head 1 uniformly."""
    maps = np.zeros((1, 2, 5, 5))
    maps[0, 0] = np.eye(5)
    maps[0, 1] = 1 / 5
    return maps


def test_statistics_on_hand_made_maps():
    stats = head_statistics(hand_made_maps(), TOKENS)
    assert stats["to_self"][0].tolist() == pytest.approx([1.0, 0.2])
    assert stats["entropy"][0].tolist() == pytest.approx([0.0, np.log(5)])
    assert stats["to_cls"][0].tolist() == pytest.approx([0.2, 0.2])  # only [CLS] itself, 1/5 of rows
    assert stats["to_sep"][0].tolist() == pytest.approx([0.2, 0.2])
    assert stats["to_previous"][0].tolist() == pytest.approx([0.0, 0.2])
    shifted = np.zeros((1, 1, 5, 5))
    shifted[0, 0, np.arange(1, 5), np.arange(4)] = 1.0  # every token looks at the previous one
    shifted[0, 0, 0, 0] = 1.0
    assert head_statistics(shifted, TOKENS)["to_previous"][0, 0] == pytest.approx(1.0)
    assert head_statistics(shifted, TOKENS)["to_next"][0, 0] == pytest.approx(0.0)
    table = statistics_table(hand_made_maps(), TOKENS)
    assert set(table["statistic"]) == {"entropy", "to_cls", "to_sep", "to_self", "to_previous", "to_next"}
    assert len(table) == 6 * 2 and table["layer"].min() == 1
    with pytest.raises(ValueError, match="4 tokens for attention maps over 5"):
        head_statistics(hand_made_maps(), TOKENS[:4])


def test_word_merging_sums_received_and_averages_given():
    assert word_groups(TOKENS) == [[0], [1], [2, 3], [4]]
    maps = np.zeros((1, 1, 5, 5))
    maps[0, 0, 2] = [0, 0, 0, 1, 0]  # "play" looks at "##ing"
    maps[0, 0, 3] = [1, 0, 0, 0, 0]  # "##ing" looks at [CLS]
    maps[0, 0, [0, 1, 4], 0] = 1
    merged, words = merge_words(maps, TOKENS)
    assert words == ["[CLS]", "the", "playing", "[SEP]"]
    assert merged[0, 0, 2].tolist() == pytest.approx([0.5, 0, 0.5, 0])  # mean of its pieces' rows
    np.testing.assert_allclose(merged.sum(-1), 1.0)


@pytest.fixture(scope="module")
def explorer(toy_vocab):
    pytest.importorskip("anywidget")
    from workbench.explore.explorer import AttentionExplorer
    from workbench.models.config import BertConfig
    from workbench.models.encoder import BertEncoder
    from workbench.text.tokenizer import BertTokenizer

    tokenizer = BertTokenizer(str(toy_vocab), lowercase=True)
    encoder = BertEncoder.from_config_object(
        BertConfig.from_size(
            "tiny", vocab_size=tokenizer.vocabulary_size(), max_position_embeddings=16, num_attention_heads=4
        )
    )
    return AttentionExplorer(encoder, tokenizer, "The cat sat on the mat.", "Hello world!", max_seq_length=16)


def test_explorer_views_follow_the_controls(explorer):
    assert explorer.tokens[0] == "[CLS]" and explorer.tokens.count("[SEP]") == 2
    first = np.array(explorer.head_view.data[0].z)
    explorer.set_layer(1)
    assert explorer.layer_slider.value == 2 and not np.allclose(np.array(explorer.head_view.data[0].z), first)
    explorer.set_heads([1, 2])
    assert "heads 2, 3 (mean)" in explorer.head_view.layout.title.text
    assert len(explorer.model_view.data) == 2 * 4
    assert np.array(explorer.stats_view.data[0].z).shape == (2, 4)
    cached = explorer.maps
    explorer.text_b.value = ""  # new input, then back: served from the cache
    explorer.text_b.value = "Hello world!"
    assert explorer.maps is cached


def test_explorer_bad_input_gives_messages_not_tracebacks(explorer):
    assert explorer.set_layer(7) is False and "out of range" in explorer.message.value
    assert explorer.set_heads([9]) is False and "0-3" in explorer.message.value
    explorer.text_a.value = ""
    assert "Type a sentence A" in explorer.message.value
    explorer.text_a.value = "the cat sat on the mat " * 5
    assert "only the first 16 are shown" in explorer.message.value and len(explorer.tokens) == 16
    explorer.text_a.value = "The cat sat on the mat."


def test_html_export_is_standalone_and_has_the_data(explorer, tmp_path):
    path = explorer.export_html(str(tmp_path / "a.html"))
    page = open(path).read()
    assert re.findall(r"<script[^>]+src=", page) == []  # no external scripts (no CDN)
    assert "plotly.js v" in page or "Plotly" in page
    assert "[CLS] the cat sat" in page and "Model view" in page
    csv = explorer.export_statistics(str(tmp_path / "s.csv"))
    assert open(csv).readline().strip() == "layer,head,statistic,value"


def test_lines_view_has_one_colour_per_selected_head(explorer):
    explorer.set_heads([0, 3])
    visible = [t for t in explorer.lines_view.data[: explorer.num_heads] if t.visible]
    assert [t.name for t in visible] == ["head 1", "head 4"]
    assert visible[0].line.color != visible[1].line.color
    n = len(explorer.tokens)
    assert len(visible[0].x) == 3 * n * 3  # 3 links per token, each (start, end, gap)


def test_model_without_tokenizer_gets_a_message_in_the_widget(tmp_path):
    pytest.importorskip("anywidget")
    from workbench.explore.explorer import explore_attention
    from workbench.models.config import BertConfig
    from workbench.models.encoder import BertEncoder

    BertEncoder.from_config_object(
        BertConfig.from_size("tiny", vocab_size=50, max_position_embeddings=16)
    ).save_to_preset(str(tmp_path / "m"))
    explorer = explore_attention(str(tmp_path / "m"), "The cat sat.")
    assert explorer.tokenizer is None and "no tokenizer" in explorer.message.value
