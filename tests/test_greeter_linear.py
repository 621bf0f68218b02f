"""The greeter's learned second opinion (kiosk/linear.py): it makes answers more careful or more precise,
never bolder, and the greeter works without scikit-learn.

The model is trained once per process (``linear.trained`` is cached), so these tests share the one
the other greeter tests build.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kiosk import greeter as greeter_module
from kiosk import linear
from kiosk.greeter import Greeter
from kiosk.greeter_eval import load_probe_lines
from kiosk.textnorm import normalise
from luot.config import load_config

pytest.importorskip("sklearn")

CONFIG = load_config()
GREETER = Greeter(CONFIG)
RULES = Greeter(CONFIG, learned=False)
FRESH_E = Path(__file__).resolve().parent / "data" / "greeter_probes_fresh_e.tsv"
PROBE_FILES = sorted((Path(__file__).resolve().parent / "data").glob("greeter_*probes*.tsv"))


def test_a_confident_other_counter_turns_a_wrong_ticket_into_a_question(monkeypatch) -> None:
    """"Rebuild the house of a martyr's family": the rules read a building permit (land counter);
    the model is sure it is the merit-housing support (social protection). Short of answering
    itself (``Combination.override_strong``: the rules' building permit is well evidenced, so the
    lower ``override`` does not apply), it asks with both."""
    text = "xay lai nha cho gia dinh liet si"
    assert RULES.understand(text).group == "dat-dai"
    assert RULES._rules(text, RULES.reading(text))[1] >= greeter_module.PROCEDURE_STRONG
    monkeypatch.setattr(GREETER, "combination", replace(GREETER.combination, override=0.1, override_strong=2.0))
    answer = GREETER.understand(text)
    assert answer.question and answer.group is None and answer.procedure is None
    assert [c["id"] for c in answer.choices] == ["xd-giay-phep", "ncc-nha-o"]
    assert {c["group"] for c in answer.choices} == {"dat-dai", "bao-tro-xa-hoi"}


def test_a_very_sure_model_answers_instead_and_keeps_the_rules_pick_as_a_button() -> None:
    text = "xay lai nha cho gia dinh liet si"
    answer = GREETER.understand(text)
    assert not answer.question and answer.group == "bao-tro-xa-hoi" and answer.procedure["id"] == "ncc-nha-o"
    assert [c["id"] for c in answer.choices] == ["xd-giay-phep"]


def test_where_the_rules_ask_back_a_sure_model_answers(monkeypatch) -> None:
    """"I want to marry an American friend": no catalogue phrasing says "cưới ... người Mỹ"."""
    text = "tôi muốn cưới anh bạn người Mỹ"
    assert RULES.understand(text).group is None
    answer = GREETER.understand(text)
    assert answer.group == "ho-tich" and answer.procedure["id"] == "ket-hon-nuoc-ngoai"
    monkeypatch.setattr(GREETER, "combination", replace(GREETER.combination, fill=2.0))
    assert GREETER.understand(text).group is None


def test_inside_the_rules_counter_it_names_its_procedure_and_keeps_the_other_as_a_button() -> None:
    text = "xin them ban sao giay khai tu"  # a copy of a death extract, not a new death registration
    assert RULES.understand(text).procedure["id"] == "khai-tu"
    answer = GREETER.understand(text)
    assert answer.group == "ho-tich" and answer.procedure["id"] == "trich-luc-ho-tich"
    assert [c["id"] for c in answer.choices] == ["khai-tu"]


def test_close_procedures_stay_a_question_with_its_choice_first() -> None:
    answer = GREETER.understand("giấy phép xây dựng bị rách cấp lại")
    assert answer.question and answer.procedure is None and answer.group == "dat-dai"
    assert answer.choices[0]["id"] == "xd-cap-lai"


def test_chit_chat_the_lexicon_alone_took_for_a_counter_becomes_a_question(monkeypatch) -> None:
    """"Where is the photocopier?": the lexicon hears "photo" (copies: certification); the model is
    sure it is no procedure, and the rules found no catalogue phrasing, so the greeter asks."""
    text = "chỗ photo ở đâu vậy em"
    assert RULES.understand(text).group == "chung-thuc"
    answer = GREETER.understand(text)
    assert answer.question and answer.group is None and answer.procedure is None
    monkeypatch.setattr(GREETER, "combination", replace(GREETER.combination, none_weak=2.0))
    assert GREETER.understand(text).group == "chung-thuc"


def test_it_never_answers_one_word_where_the_rules_ask_back() -> None:
    """"vâng" (yes) shares its letters with "tạm vắng": a model sure of that must not make it a ticket."""
    greeter = Greeter(CONFIG)
    greeter.linear = linear.LinearModel([("cutru-tam-vang", "vang"), ("cutru-tam-vang", "tam vang"),
                                         ("cutru-tam-vang", "khai bao vang"), ("khai-tu", "mat"),
                                         ("khai-tu", "qua doi"), ("khai-tu", "khai tu")])
    assert greeter.linear.posteriors("vang")[0][0] == "cutru-tam-vang"
    answer = greeter.understand("vâng")
    assert RULES.understand("vâng").group is None
    assert answer.group is None and answer.procedure is None and answer.outside is None


def test_probabilities_are_a_calibrated_distribution() -> None:
    model = GREETER.linear
    assert model.temperature in linear.TEMPERATURES
    ranked = model.posteriors("xin giay xac nhan doc than")
    assert ranked[0][0] == "xac-nhan-tthn"
    assert sum(p for _, p in ranked) == pytest.approx(1.0)
    assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)


def test_without_scikit_learn_the_rules_answer_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linear, "available", lambda: False)
    bare = Greeter(CONFIG)
    assert bare.linear is None
    for text in ("sua nha cho gia dinh liet si", "xin them ban sao giay khai tu", "dang ky ket hon"):
        assert bare.understand(text).to_json() == RULES.understand(text).to_json()


def test_a_centre_procedure_with_one_phrasing_still_trains(tmp_path: Path) -> None:
    """Calibration uses 3 folds: a label with fewer lines is repeated instead of failing."""
    model = linear.LinearModel([("a", "mot hai"), ("b", "ba bon"), ("b", "ba nam"), ("c", "sau bay"),
                                ("c", "sau tam"), ("c", "sau chin")])
    assert model.posteriors("mot hai")[0][0] == "a"


def test_training_lines_name_only_known_entries() -> None:
    known = set(GREETER.catalogue.entries) | {linear.NONE_LABEL}
    for path in linear.TRAINING_PATHS:
        assert {label for label, _ in linear.load_training(path)} <= known
    assert {line.procedure for line in load_probe_lines(FRESH_E) if line.procedure} <= set(GREETER.catalogue.entries)


def test_every_training_file_is_found_by_the_glob() -> None:
    """A training file written in another branch (tune-m, tune-n…) is used once it is merged: every
    kiosk/greeter_training*.tsv is in TRAINING_PATHS, which the greeter trains on."""
    on_disk = sorted(Path(linear.__file__).resolve().parent.glob("greeter_training*.tsv"))
    assert list(linear.TRAINING_PATHS) == on_disk
    assert {linear.TRAINING_PATH, linear.TUNING_PATH, linear.TUNING_I_PATH} <= set(on_disk)
    assert set(linear.RULES_TUNED_PATHS) < set(on_disk)  # some file is left for cross-validation


def test_no_probe_line_is_in_the_training_lines() -> None:
    """No line of any probe batch (fresh-a..j and later ones) may be in any training file
    (kiosk/greeter_training*.tsv, whoever wrote it): the probes measure the model on lines it never saw."""
    assert len(PROBE_FILES) >= 6
    for path in linear.TRAINING_PATHS:
        trained = {normalise(text) for _, text in linear.load_training(path)}
        for batch in PROBE_FILES:
            shared = trained & {normalise(line.text) for line in load_probe_lines(batch)}
            assert not shared, f"{path.name} holds lines of {batch.name}: {sorted(shared)[:3]}"
    assert linear.TUNING_I_PATH in linear.TRAINING_PATHS


def test_a_sure_model_answers_instead_of_the_guidance_group_and_short_of_that_asks(monkeypatch) -> None:
    """"I want to acknowledge my own daughter; her father's name was never written": the rules hear
    only the guidance group's words; the model is sure it is recognising a child (Hộ tịch). Before
    round 3 a guidance answer was never questioned (a confidently wrong line of fresh-j)."""
    text = "tôi muốn nhận lại con gái ruột, hồi đó không ghi tên cha"
    assert RULES.understand(text).group == "khac"
    answer = GREETER.understand(text)
    assert not answer.question and answer.group == "ho-tich" and answer.procedure["id"] == "nhan-cha-me-con"
    assert answer.choices and all(c["group"] == "khac" for c in answer.choices)  # the guidance ticket stays a button
    monkeypatch.setattr(GREETER, "combination", replace(GREETER.combination, guidance_override=2.0))
    asked = GREETER.understand(text)
    assert asked.question and asked.group is None and "nhan-cha-me-con" in [c["id"] for c in asked.choices]
    monkeypatch.setattr(GREETER, "combination", replace(GREETER.combination, guidance_override=2.0, guidance_veto=2.0))
    assert GREETER.understand(text).group == "khac"


def test_chit_chat_given_the_guidance_group_becomes_a_question_but_asking_for_guidance_does_not(monkeypatch) -> None:
    """"Where can I wash my hands?" is no procedure: the guidance desk is not where it goes. "hỏi thủ
    tục" (the guidance group's own words) still gets the guidance ticket, however low the threshold."""
    text = "cho tôi hỏi chỗ rửa tay ở đâu"
    assert RULES.understand(text).group == "khac"
    answer = GREETER.understand(text)
    assert answer.question and answer.group is None and answer.outside is None
    monkeypatch.setattr(GREETER, "combination", replace(GREETER.combination, guidance_none=0.5))
    assert GREETER.linear.posteriors(normalise("hỏi thủ tục"))[0][0] == linear.NONE_LABEL  # it would veto
    for own in ("hỏi thủ tục", "tư vấn", "hướng dẫn"):
        assert GREETER.understand(own).group == "khac", own
    monkeypatch.setattr(GREETER, "combination", replace(GREETER.combination, guidance_none=2.0))
    assert GREETER.understand(text).group == "khac"


def test_a_one_phrase_catalogue_answer_the_model_finds_no_procedure_becomes_a_question(tmp_path: Path, monkeypatch) -> None:
    """"Where do I press for a number?": with "bấm số" a phrasing of the vehicle matter (a number
    plate; the shipped catalogue says "bấm số xe" since round 3, a centre's file may say less), one
    short catalogue phrase is all the rules have; the model is sure it is no procedure, so the
    greeter asks. A request with more evidence keeps its answer."""
    extra = tmp_path / "plates.toml"
    extra.write_text('[[outside]]\nid = "out-xe"\nsay = ["bam so"]\n', encoding="utf-8")
    centre_rules = Greeter(CONFIG, extra_catalogues=[extra], learned=False)

    def combined(text: str):
        answer, evidence = centre_rules._rules(text, centre_rules.reading(text))
        return answer, GREETER.combine(text, answer, evidence, GREETER.linear.posteriors(normalise(text)))

    rules, answer = combined("cho hỏi bấm số chỗ nào vậy")
    assert rules.outside and rules.outside["id"] == "out-xe"
    assert answer.question and answer.outside is None and answer.group is None
    assert combined("đăng ký biển số xe máy mới mua")[1].outside["id"] == "out-xe"
    monkeypatch.setattr(GREETER, "combination", replace(GREETER.combination, none_thin=2.0))
    assert combined("cho hỏi bấm số chỗ nào vậy")[1].outside["id"] == "out-xe"
    assert GREETER.understand("cho hỏi bấm số chỗ nào vậy").outside is None  # the shipped phrasing needs "xe"


def test_the_thresholds_come_from_the_selection_file_and_a_bad_key_is_refused(tmp_path: Path) -> None:
    from kiosk.greeter import COMBINATION_PATH, Combination

    assert COMBINATION_PATH.exists() and GREETER.combination == Combination.load()
    assert Combination.load() != Combination()  # the file sets them, not the round-2 defaults
    own = tmp_path / "c.toml"
    own.write_text("[combination]\nveto = 0.5\nfill_min_words = 2\n", encoding="utf-8")
    assert Combination.load(own) == replace(Combination(), veto=0.5, fill_min_words=2)
    own.write_text("[combination]\nvetoo = 0.5\n", encoding="utf-8")
    with pytest.raises(ValueError, match="vetoo"):
        Combination.load(own)


def test_the_selection_takes_the_cheaper_threshold_and_writes_what_the_greeter_reads(tmp_path: Path) -> None:
    """bench/select_greeter_thresholds.py on one line: chit-chat the rules give the guidance group is
    confidently wrong under round 2's thresholds; the descent finds a ``guidance_none`` that asks,
    and the file it writes loads as the same Combination."""
    from bench import select_greeter_thresholds as selection
    from kiosk.greeter import Combination
    from kiosk.greeter_eval import ProbeLine

    text = "cho tôi hỏi chỗ rửa tay ở đâu"
    cases = selection.cases_for(GREETER, [ProbeLine(text, "NONE", None, "t", 1)], ["dev t"],
                                [GREETER.linear.posteriors(selection.model_text(GREETER, text))])
    assert selection.tally(GREETER, cases, selection.ROUND_2)["all"]["wrong"] == 1
    chosen = selection.select(GREETER, cases, selection.ROUND_2, 8.0)
    assert chosen.guidance_none <= 1.0 and selection.tally(GREETER, cases, chosen)["all"]["right"] == 1
    selection.write(chosen, 8.0, tmp_path / "c.toml")
    assert Combination.load(tmp_path / "c.toml") == chosen
