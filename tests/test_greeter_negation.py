"""Negation in the greeter (issue 16): a negated phrase does not count for its procedure.

"hổng có lương hưu" (has NO pension) sent an old man to the Social Insurance office. These lines are
not from any probe batch (fresh-f/g stay unseen); they check the scope rules and that the lexicon,
the catalogue and the learned model each leave the negated words out.
"""

from __future__ import annotations

from kiosk.greeter import Greeter
from kiosk.negation import clause_scope, negated_positions
from luot.config import load_config

RULES = Greeter(load_config(None), learned=False)
GREETER = Greeter(load_config(None))


def negated(text: str) -> list[str]:
    tokens, marked = negated_positions(text, RULES.tokens)  # "ko" is read "khong" there
    return [t for i, t in enumerate(tokens) if i in marked]


def test_the_words_after_a_negation_are_marked_up_to_the_clause_end() -> None:
    assert negated("ông già tui hổng có lương hưu, nhà nước có cho tiền không") == ["co", "luong", "huu"]
    assert negated("ko phai ly hon, toi can ban sao") == ["phai", "ly", "hon"]
    assert negated("không có lương hưu mà muốn xin trợ cấp") == ["co", "luong", "huu"]  # "mà" ends it


def test_what_is_not_a_negation_is_not_marked() -> None:
    for text in ["sổ hồng bị mất",  # hồng, not hổng
                 "tui không biết làm khai sinh ở đâu",  # don't know: asks for it
                 "không kinh doanh nữa",  # no longer: the same counter, closing
                 "em không muốn nhận phần thừa kế",  # refusing an estate is a procedure
                 "con tôi chưa có giấy khai sinh",  # not yet: exactly the need
                 "có phải xin phép xây nhà không"]:  # a question's last word
        assert negated(text) == [], text
    assert clause_scope(["khong"]) == set()


def test_a_negated_pension_does_not_send_to_the_social_insurance_office() -> None:
    text = "ông già tui ngoài tám chục, hổng có lương hưu, nghe nói nhà nước có cho tiền hàng tháng"
    for greeter in (RULES, GREETER):
        answer = greeter.understand(text)
        assert answer.outside is None
        assert answer.group == "bao-tro-xa-hoi" and answer.procedure["id"] == "btxh-nguoi-cao-tuoi"


def test_a_negated_outside_matter_leaves_the_procedure_that_follows() -> None:
    answer = GREETER.understand("ko phai ly hon, toi can ban sao giay ket hon")
    assert answer.outside is None and answer.procedure["id"] == "trich-luc-ho-tich"


def test_the_lexicon_leaves_negated_words_out_of_the_group_scores() -> None:
    assert "cu-tru" in RULES.scores("dang ky tam tru")
    assert "cu-tru" not in RULES.scores("khong phai dang ky tam tru")


def test_the_learned_model_reads_the_sentence_without_its_negated_words() -> None:
    """The rules name the residence confirmation; the model, reading "đăng ký tạm trú", would have
    named the temporary-residence registration in its place (same counter)."""
    answer = GREETER.understand("khong phai dang ky tam tru, em can xac nhan cu tru")
    assert answer.procedure["id"] == "cutru-xac-nhan"
    assert [c["id"] for c in answer.choices] == []


def test_a_phrase_that_holds_the_negation_still_counts() -> None:
    answer = RULES.understand("toi khong co vo, can giay xac nhan de cuoi o tinh khac")
    assert answer.procedure["id"] == "xac-nhan-tthn"


def test_the_catalogue_leaves_a_negated_phrase_out() -> None:
    tokens, marked = RULES.reading("ko phai ly hon dau")
    assert "out-ly-hon" in [e.id for e, _ in RULES.catalogue.rank(tokens, RULES.not_before)]
    assert "out-ly-hon" not in [e.id for e, _ in RULES.catalogue.rank(tokens, RULES.not_before, marked)]
