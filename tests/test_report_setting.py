"""The setting page's tables read the code they describe."""

from imbcl.report import registry, setting
from imbcl.studies import pruning, stages


def test_seed_table_reads_each_chapters_profiles_and_claims():
    table = setting.seed_table()
    assert list(table.index) == list(registry.CHAPTERS)
    assert table.loc["ch1", "seeds (book)"] == stages.Settings.from_params("full").n_seeds
    assert table.loc["ch4", "seeds (tests)"] == pruning.Settings.from_params("small").n_seeds
    assert table.loc["ch2", "claims"] == len(registry.for_chapter("ch2"))
    assert (table["fewest seeds a claim allows"] >= registry.MIN_SEEDS).all()
