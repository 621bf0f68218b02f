"""Kiosk greeter: does it send citizens to the right queue, and ask back when it cannot tell?

Accuracy is measured on tests/data/greeter_phrases.tsv. The "heldout" lines were split off by hash
before the lexicon was written and are never used to tune it. "probe" and "probe2" are fresh batches
written later and never tuned on while they are probes (the first probe batch has been tuned on since
2026-11-23 and is now "tuned"); the newest probe is the honest figure for phrasings nobody
anticipated (printed; run pytest with -s to see it).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.greeter import THRESHOLD, Greeter, legal_time_vi, normalise, strip_diacritics
from kiosk.greeter_eval import SPLITS, evaluate, load_phrases
from luot.config import DEFAULT_CONFIG, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
PHRASES_FILE = ROOT / "tests" / "data" / "greeter_phrases.tsv"
PHRASES = load_phrases(PHRASES_FILE)
CONFIG = load_config()
GREETER = Greeter(CONFIG)
SAMPLE_CODES = {"ho-tich", "chung-thuc", "dat-dai", "cu-tru", "bao-tro-xa-hoi", "ho-kinh-doanh", "khac"}
# The first batch, hash-split into tuned and heldout before any lexicon existed, ends at the first "# ---".
FIRST_BATCH_END = next(n for n, line in enumerate(PHRASES_FILE.read_text(encoding="utf-8").splitlines(), start=1)
                       if line.startswith("# ---"))
# Floors against regressions, not goals. A split without lines (probe, since its lines went to tuned)
# is not measured; tuned, heldout and probe2 must have lines (test_phrase_file_is_big_varied_and_split).
FLOORS = {"tuned": 0.90, "heldout": 0.75, "probe": 0.60, "probe2": 0.60}


def test_phrase_file_is_big_varied_and_split() -> None:
    assert len(PHRASES) >= 180
    labels = {p.expected for p in PHRASES}
    assert labels == SAMPLE_CODES | {None}
    assert sum(p.expected is None for p in PHRASES) >= 12
    first_batch = [p for p in PHRASES if p.line < FIRST_BATCH_END]
    assert len(first_batch) >= 180 and {p.split for p in first_batch} == {"tuned", "heldout"}
    heldout = sum(p.split == "heldout" for p in first_batch) / len(first_batch)
    assert 0.25 <= heldout <= 0.35
    for p in first_batch:  # exactly the hash split, so no line moved in or out of heldout
        assert (hashlib.sha1(p.text.encode("utf-8")).digest()[0] % 10 < 3) == (p.split == "heldout"), p.text
    later = [p for p in PHRASES if p.line > FIRST_BATCH_END]
    assert not [p.text for p in later if p.split == "heldout"]
    assert sum(p.split == "tuned" for p in later) >= 30  # the first probe batch, tuned on since 2026-11-23
    probe2 = [p for p in PHRASES if p.split == "probe2"]
    assert len(probe2) >= 40
    assert {p.expected for p in probe2} == SAMPLE_CODES | {None}  # every group, and lines that are none
    assert 0.3 * len(probe2) <= sum(normalise(p.text) == p.text for p in probe2) <= 0.7 * len(probe2)
    plain = sum(normalise(p.text) == p.text for p in PHRASES)  # typed without diacritics
    assert 0.2 * len(PHRASES) <= plain <= 0.8 * len(PHRASES)


def test_accuracy_on_tuned_and_heldout_phrases(record_property: pytest.RecordProperty) -> None:
    result = evaluate(GREETER, PHRASES)
    measured = [split for split in SPLITS if result[split] is not None]
    figures = ", ".join(f"{'held-out' if split == 'heldout' else split} {result[split]:.3f}" for split in measured)
    print(f"\ngreeter accuracy: {figures}, overall {result['overall']:.3f} on {result['phrases']} phrasings")
    for miss in result["confusion"]:
        print(f"  miss ({miss['split']}): {miss['text']!r} expected {miss['expected']} got {miss['got']}")
    record_property("greeter_accuracy", json.dumps({k: result[k] for k in (*SPLITS, "overall")}))
    assert {"tuned", "heldout", "probe2"} <= set(measured)
    for split in measured:  # fresh phrasings (probe, probe2): a floor against regressions, not a goal
        assert result[split] >= FLOORS[split], split
    wrong_confident = [m for m in result["confusion"] if m["got"] != "NONE"]
    assert len(wrong_confident) <= 0.03 * result["phrases"]  # failing should mean asking back


@pytest.mark.parametrize(("text", "group"), [
    ("làm giấy khai sinh", "ho-tich"),
    ("dang ky ket hon", "ho-tich"),
    ("sổ đỏ", "dat-dai"),
    ("xác nhận cư trú", "cu-tru"),
    ("công chứng bản sao", "chung-thuc"),
    ("chứng thực", "chung-thuc"),
    ("đăng ký tạm trú", "cu-tru"),
    ("khai tử", "ho-tich"),
    ("trợ cấp người khuyết tật", "bao-tro-xa-hoi"),
    ("mở quán ăn", "ho-kinh-doanh"),
    ("đăng ký kinh doanh", "ho-kinh-doanh"),
    ("sang tên nhà đất", "dat-dai"),
    ("trích lục", "ho-tich"),
    ("xin xác nhận tình trạng hôn nhân", "ho-tich"),
    ("hỏi thủ tục", "khac"),
    ("tư vấn", "khac"),
    ("hướng dẫn", "khac"),
    ("hỏi thủ tục khai sinh", "ho-tich"),          # a specific procedure beats "asking"
    ("công chứng giấy khai sinh", "chung-thuc"),   # the birth certificate is the object
    ("ddawng kys keets hoon", "ho-tich"),          # Telex typed with the input method off
    ("d9a8ng ky1 ta5m tru1", "cu-tru"),            # VNI typed with the input method off
    ("khaisinh cho con", "ho-tich"),               # glued words
    ("đăng kí tạm chú", "cu-tru"),                 # tr/ch spelling confusion
    ("xin giấy fép kinh doanh", "ho-kinh-doanh"),  # teen code f = ph
    ("ket hpn", "ho-tich"),                        # one typo
    ("mẹ tôi mất tuần trước", "ho-tich"),          # a death: family word + "mất"
    ("mẹ tôi mất sổ đỏ", "dat-dai"),               # a lost land title, not a death
    ("mất giấy tờ", None),                         # lost papers: which ones?
    ("xin chào", None),
    ("tôi cần giúp", None),
])
def test_must_pass(text: str, group: str | None) -> None:
    assert GREETER.understand(text).group == group


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(phrase=st.sampled_from(PHRASES), data=st.data())
def test_diacritics_never_change_the_match(phrase, data) -> None:
    """People type some marks and not others, NFC or NFD, any case: the answer must not move."""
    original = GREETER.understand(phrase.text)
    mask = data.draw(st.lists(st.booleans(), min_size=len(phrase.text), max_size=len(phrase.text)))
    mixed = "".join(strip_diacritics(ch) if drop else ch for ch, drop in zip(phrase.text, mask))
    form = data.draw(st.sampled_from(["NFC", "NFD"]))
    variant = unicodedata.normalize(form, data.draw(st.sampled_from([str.lower, str.upper, str.title]))(mixed))
    assert GREETER.understand(variant).group == original.group
    assert GREETER.understand(strip_diacritics(phrase.text)).group == original.group
    assert GREETER.understand(variant).confidence == pytest.approx(original.confidence)


@pytest.mark.parametrize("group", CONFIG.groups, ids=lambda g: g.code)
def test_answer_names_procedure_documents_and_legal_time(group) -> None:
    """A group's name alone names no procedure (except "Đăng ký hộ kinh doanh", which is one): the
    group-level answer, with the group's documents and time, and its procedures as buttons."""
    answer = GREETER.understand(group.name)
    assert answer.group == group.code and not answer.question
    if answer.procedure is not None:
        assert group.code == "ho-kinh-doanh" and answer.procedure["id"] == "hkd-thanh-lap"
        return
    assert answer.documents == group.documents and answer.legal_days == group.legal_days
    for document in group.documents:
        assert document in answer.reply_vi and document in answer.reply_en
    assert group.name in answer.reply_vi and f"nhóm {group.letter}" in answer.reply_vi
    assert legal_time_vi(group.legal_days) in answer.reply_vi
    assert answer.choices and all(c["group"] == group.code for c in answer.choices)


def test_legal_time_wording() -> None:
    assert legal_time_vi(0) == "trong ngày"
    assert legal_time_vi(3) == "3 ngày làm việc"
    khac = GREETER.understand("tư vấn")
    assert "trong ngày" in khac.reply_vi and "same day" in khac.reply_en
    land = GREETER.understand("sổ đỏ")
    assert "10 ngày làm việc" in land.reply_vi and "10 working days" in land.reply_en
    assert "sổ đỏ" in land.reply_vi  # names what it heard, spelled properly


# probe2 is measured, not required: its lines that are no procedure count in its accuracy above.
@pytest.mark.parametrize("text", [p.text for p in PHRASES if p.expected is None and p.split != "probe2"] + [
    "hôm nay trời đẹp quá", "mấy giờ rồi", "nhà vệ sinh ở đâu", "", "   ", "???", "0912345678",
    "bố tôi mắc bệnh",  # "mắc" must not sound like "mất"
])
def test_unclear_text_gets_a_question_not_a_guess(text: str) -> None:
    answer = GREETER.understand(text)
    assert answer.group is None and answer.question
    assert answer.confidence < THRESHOLD
    assert answer.suggestions and "?" in answer.reply_vi and "?" in answer.reply_en
    assert not answer.documents and answer.legal_days is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="bmpqvz", min_size=1, max_size=8), min_size=1, max_size=6))
def test_gibberish_is_never_answered_confidently(tokens: list[str]) -> None:
    answer = GREETER.understand(" ".join(tokens))
    assert answer.group is None and answer.confidence < THRESHOLD


def test_ambiguous_word_asks_which_group() -> None:
    answer = GREETER.understand("đăng ký")
    assert answer.group is None and answer.question
    offered = {code for code, _ in answer.alternatives}
    assert {"ho-tich", "cu-tru"} <= offered
    assert "Hộ tịch" in answer.reply_vi and "Cư trú" in answer.reply_vi


def test_suggestion_buttons_lead_to_their_own_groups() -> None:
    suggestions = GREETER.suggestions()
    assert 6 <= len(suggestions) <= 8
    lexicon = tomllib.loads((ROOT / "kiosk" / "greeter_lexicon.toml").read_text(encoding="utf-8"))
    meant = {s["text"]: s["group"] for s in lexicon["suggestions"]}
    for text in suggestions:
        assert GREETER.understand(text).group == meant[text], text


def _sample_data() -> dict:
    return tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))


def test_group_missing_from_lexicon_matches_by_its_name_and_description() -> None:
    data = _sample_data()
    data["groups"].append({
        "code": "tu-phap", "letter": "K", "first_number": 8001, "name": "Lý lịch tư pháp",
        "description": "Cấp phiếu lý lịch tư pháp, nghĩa vụ quân sự", "service_minutes": 5,
        "legal_days": 10, "documents": ["Tờ khai yêu cầu cấp phiếu lý lịch tư pháp"],
    })
    data["counters"][0]["groups"].append("tu-phap")
    greeter = Greeter(parse_config(data))
    assert greeter.understand("xin phieu ly lich tu phap").group == "tu-phap"
    assert greeter.understand("đăng ký nghĩa vụ quân sự").group == "tu-phap"
    assert greeter.understand("làm giấy khai sinh").group == "ho-tich"


def test_group_the_centre_lacks_is_never_answered() -> None:
    data = _sample_data()
    data["groups"] = [g for g in data["groups"] if g["code"] != "dat-dai"]
    data["greeter"]["procedure_groups"].pop("xay-dung")  # a mapping to a missing group is refused
    for counter in data["counters"]:
        counter["groups"] = [c for c in counter["groups"] if c != "dat-dai"] or ["khac"]
    greeter = Greeter(parse_config(data))
    assert greeter.understand("sổ đỏ").group is None
    assert all("sổ đỏ" not in s.lower() for s in greeter.suggestions())


def test_centre_lexicon_extends_and_is_checked(tmp_path: Path) -> None:
    extra = tmp_path / "local.toml"
    extra.write_text('[abbreviations]\nnvqs = "nghia vu quan su"\n\n[groups.khac.phrases]\n"nghĩa vụ quân sự" = 5\n',
                     encoding="utf-8")
    assert GREETER.understand("dk nvqs").group is None
    assert Greeter(CONFIG, extra_lexicons=[extra]).understand("dk nvqs").group == "khac"
    clash = tmp_path / "clash.toml"
    clash.write_text('[groups.khac.phrases]\n"tư vấn" = 3\n"tu van" = 1\n', encoding="utf-8")
    with pytest.raises(ValueError, match="same once"):
        Greeter(CONFIG, extra_lexicons=[clash])


def _luot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "luot.cli", "greet", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cli_prints_the_answer_as_json() -> None:
    done = _luot("dang ky ket hon", "--config", str(DEFAULT_CONFIG), "--rules-only")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert {"text", "group", "confidence", "alternatives", "reply_vi", "reply_en", "documents", "legal_days"} <= answer.keys()
    assert answer["group"] == "ho-tich" and answer["procedure"]["id"] == "ket-hon"
    assert answer["documents"] == answer["procedure"]["documents"] and answer["legal_days"] == 0
    assert "Giấy chứng sinh" not in " ".join(answer["documents"])  # issue 16: not the birth paper


def test_cli_evaluates_a_phrase_file() -> None:
    done = _luot("--evaluate", str(PHRASES_FILE), "--rules-only")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["phrases"] == len(PHRASES)
    assert figures["tuned"] >= 0.90 and figures["heldout"] >= 0.75
    assert isinstance(figures["confusion"], list)


def test_cli_explains_bad_input(tmp_path: Path) -> None:
    assert _luot().returncode == 2
    broken = tmp_path / "broken.toml"
    broken.write_text("[groups.khac.phrases\n", encoding="utf-8")
    done = _luot("chào", "--lexicon", str(broken))
    assert done.returncode == 1 and "lexicon" in done.stderr and "Traceback" not in done.stderr


def test_word_classes_and_words_a_phrase_must_not_come_before(tmp_path: Path) -> None:
    kin = tmp_path / "kin.toml"
    kin.write_text('[word_classes]\nkin = ["mẹ", "ông nội"]\nmine = ["tôi", "em"]\n\n'
                   '[not_before]\n"mất" = ["sổ", "giấy tờ"]\n\n'
                   '[groups.ho-tich.phrases]\n"{kin} {mine} mất" = 3\n', encoding="utf-8")
    more = tmp_path / "more.toml"
    more.write_text('[word_classes]\nkin = ["mẹ kế"]\n', encoding="utf-8")
    greeter = Greeter(CONFIG, extra_lexicons=[kin, more])
    for text in ("ông nội em mất hôm qua", "me toi mat", "mẹ kế tôi mất"):  # a later file adds to a class
        assert greeter.understand(text).group == "ho-tich", text
    assert Greeter(CONFIG, learned=False).understand("mẹ kế tôi mất").group is None  # the shipped lexicon lacks it
    assert not greeter.understand("mẹ tôi mất").reply_vi.startswith("Ông/bà cần")  # a death is not echoed
    assert greeter.understand("tôi mất").group is None and greeter.understand("mất").group is None
    assert greeter.understand("mẹ tôi mất sổ hộ khẩu").group == "cu-tru"  # lost, not dead
    assert greeter.understand("mẹ tôi mất giấy tờ").group is None
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[groups.ho-tich.phrases]\n"{nobody} mất" = 3\n', encoding="utf-8")
    with pytest.raises(ValueError, match="word class 'nobody'"):
        Greeter(CONFIG, extra_lexicons=[unknown])


# -- procedures (issue 16) -----------------------------------------------------------------------
PROBES_FILE = ROOT / "tests" / "data" / "greeter_procedure_probes.tsv"
FIELDS = {"ho-tich", "chung-thuc", "dat-dai", "xay-dung", "cu-tru", "bao-tro-xa-hoi", "nguoi-co-cong", "ho-kinh-doanh",
          "hop-tac-xa"}


def test_catalogue_covers_the_wards_fields_with_what_to_bring() -> None:
    catalogue = GREETER.catalogue
    assert len(catalogue.procedures) >= 60
    assert FIELDS <= {e.field for e in catalogue.procedures}
    for entry in catalogue.procedures:
        assert entry.documents and entry.fee and (entry.legal_time or entry.legal_days is not None), entry.id
    # never guessed: a code is one of the six recalled, or says on its line where it was found
    recalled = {"1.001193", "1.000894", "1.000656", "1.004873", "1.004859", "2.000635"}
    lines = (ROOT / "kiosk" / "procedure_catalogue.toml").read_text(encoding="utf-8").splitlines()
    coded = [line for line in lines if line.startswith('code = "') and not line.startswith('code = ""')]
    assert len(coded) == sum(bool(e.code) for e in catalogue.procedures) < len(catalogue.procedures)
    assert all(line.split('"')[1] in recalled or "found, not checked on the portal" in line for line in coded)
    agencies = {e.agency for e in catalogue.outside}
    assert {"cong-an-xa", "bhxh", "viec-lam", "toa-an", "cong-an-giao-thong"} <= agencies
    assert all(e.where and e.where_en for e in catalogue.outside)
    assert "SOURCES" in (ROOT / "kiosk" / "procedure_catalogue.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("text, procedure", [
    ("dang ky ket hon", "ket-hon"),
    ("làm giấy xác nhận tình trạng hôn nhân", "xac-nhan-tthn"),
])
def test_issue_16_marriage_lines_are_not_told_to_bring_a_birth_paper(text: str, procedure: str) -> None:
    answer = GREETER.understand(text)
    assert answer.procedure is not None and answer.procedure["id"] == procedure and answer.group == "ho-tich"
    assert "chứng sinh" not in " ".join(answer.documents).lower()
    assert answer.procedure["name"] in answer.reply_vi and "Lệ phí" in answer.reply_vi and "Quầy 1" in answer.reply_vi
    for document in answer.documents:
        assert document in answer.reply_vi


@pytest.mark.parametrize("text, agency", [
    ("tôi muốn ly hôn", "toa-an"),
    ("rút bảo hiểm xã hội một lần", "bhxh"),
    ("hưởng trợ cấp thất nghiệp", "viec-lam"),
    ("làm căn cước cho con", "cong-an-xa"),
    ("đổi bằng lái xe", "cong-an-giao-thong"),
])
def test_another_agencys_work_says_where_to_go_and_offers_a_guidance_ticket(text: str, agency: str) -> None:
    answer = GREETER.understand(text)
    assert answer.group is None and answer.outside is not None and answer.outside["agency"] == agency
    assert answer.outside["where"] in answer.reply_vi
    assert [c["id"] for c in answer.choices] == ["khac"] and answer.choices[0]["kind"] == "group"


def test_building_permit_goes_where_the_centre_maps_it_and_unmapped_fields_to_guidance() -> None:
    answer = GREETER.understand("xin giấy phép xây dựng nhà ở")
    assert answer.procedure["id"] == "xd-giay-phep" and answer.group == "dat-dai"  # [greeter] procedure_groups
    data = _sample_data()
    del data["greeter"]
    bare = Greeter(parse_config(data)).understand("xin giấy phép xây dựng nhà ở")
    assert bare.procedure["id"] == "xd-giay-phep" and bare.group == "khac" and "chưa xếp" in bare.reply_vi


def test_close_procedures_get_one_button_each() -> None:
    answer = GREETER.understand("giấy khai sinh bị mất")
    ids = [c["id"] for c in answer.choices]
    assert answer.question and {"trich-luc-ho-tich", "dang-ky-lai-khai-sinh"} <= set(ids) and len(ids) <= 3
    assert answer.group == "ho-tich"  # one counter does both: the ticket is still right
    picked = GREETER.explain(ids[0])
    assert picked.procedure["id"] == ids[0] and not picked.question and picked.documents


def test_unclear_procedure_keeps_the_group_answer_with_its_procedures_as_buttons() -> None:
    answer = GREETER.understand("trợ cấp")
    assert answer.group == "bao-tro-xa-hoi" and answer.procedure is None
    assert answer.documents == CONFIG.group("bao-tro-xa-hoi").documents
    assert len(answer.choices) == 3 and all(c["kind"] == "procedure" for c in answer.choices)


def test_centre_catalogue_extends_and_is_checked(tmp_path: Path) -> None:
    extra = tmp_path / "centre.toml"
    extra.write_text('[[procedures]]\nid = "ket-hon"\nsay = ["tu hon"]\n\n'
                     '[[procedures]]\nid = "nvqs"\nfield = "quan-su"\nname = "Đăng ký nghĩa vụ quân sự lần đầu"\n'
                     'say = ["nghia vu quan su"]\ndocuments = ["Căn cước"]\nlegal_days = 1\nfee = "Không thu"\n',
                     encoding="utf-8")
    greeter = Greeter(CONFIG, extra_catalogues=[extra])
    assert greeter.understand("đăng ký nghĩa vụ quân sự").procedure["id"] == "nvqs"
    assert greeter.understand("đăng ký nghĩa vụ quân sự").group == "khac"  # unmapped field: guidance
    assert greeter.understand("tu hon").procedure["id"] == "ket-hon"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[procedures]]\nid = "x"\nfield = "ho-tich"\nname = "X"\ncode = "1.23"\nsay = ["x y"]\n'
                   'documents = ["a"]\n\n[[outside]]\nid = "y"\nname = "Y"\nsay = ["y z"]\n', encoding="utf-8")
    with pytest.raises(ValueError) as error:
        Greeter(CONFIG, extra_catalogues=[bad])
    assert "never guessed" not in str(error.value) and "1.23" in str(error.value) and "where" in str(error.value)


def test_config_refuses_a_procedure_mapped_to_a_missing_group() -> None:
    data = _sample_data()
    data["greeter"]["procedure_groups"]["xay-dung"] = "xay-dung"
    with pytest.raises(ConfigError, match="greeter.procedure_groups"):
        parse_config(data)


def test_probe_batches_per_procedure(record_property: pytest.RecordProperty) -> None:
    """Every procedure and outside matter has probe lines; figures per batch are printed (pytest -s).

    fresh-a was written before the catalogue and measured once before any tuning on it (the file's
    header has the figures and why they are an upper bound); the floors below are regressions guards."""
    from kiosk.greeter_eval import evaluate_probes, load_probe_lines

    lines = load_probe_lines(PROBES_FILE)
    assert {l.procedure for l in lines if l.procedure} >= set(GREETER.catalogue.entries)
    result = evaluate_probes(GREETER, lines)
    for batch, tally in result["batches"].items():
        print(batch, {k: v for k, v in tally.items() if k.endswith("rate") or k == "lines"})
        record_property(batch, json.dumps(tally))
    fresh_a = result["batches"]["fresh-a"]
    assert fresh_a["right_rate"] >= 0.9 and fresh_a["wrong"] <= 1 and fresh_a["procedure_right_rate"] >= 0.8


def test_cli_evaluates_a_probe_file_per_batch() -> None:
    done = _luot("--evaluate", str(PROBES_FILE))
    assert done.returncode == 0, done.stderr
    batches = json.loads(done.stdout)["batches"]
    assert {"fresh-a", "fresh-b"} <= batches.keys() and batches["fresh-a"]["lines"] >= 100


def test_learned_ranker_names_the_procedure_only_inside_the_rules_group() -> None:
    """The naive-Bayes ranker (kiosk/learned.py) never picks a counter: it names the likeliest procedure
    of the group the rules chose, when the text says more than the group's name."""
    text = "xin trợ cấp cho con bị tự kỷ"
    by_rules = GREETER._understand_group(text, GREETER.tokens(text))
    assert by_rules.group == "bao-tro-xa-hoi" and by_rules.procedure is None
    answer = GREETER.understand(text)
    assert answer.group == "bao-tro-xa-hoi" and answer.procedure["id"] == "btxh-khuyet-tat"
    assert answer.choices and "btxh-khuyet-tat" not in [c["id"] for c in answer.choices]
    for bare in ("Hộ tịch", "trợ cấp", "Bảo trợ xã hội"):
        assert GREETER.understand(bare).procedure is None, bare


def test_learned_ranker_features_ignore_diacritics() -> None:
    from kiosk.learned import NaiveBayes, features

    assert features("Sổ Đỏ") == features("so do") and "<so>" in features("so do")
    model = NaiveBayes([("a", "khai sinh cho con"), ("b", "ket hon")])
    assert model.posteriors("khai sinh")[0][0] == "a" and model.posteriors("kết hôn", ["b"]) == [("b", 1.0)]


def test_cli_checks_a_centres_catalogue_on_its_own_labelled_lines(tmp_path: Path) -> None:
    """Item 5 of issue 16: a centre adds a procedure and a phrasing in its own file, then measures them
    on its own labelled lines with `luot greet --evaluate` before use; lines naming a procedure the
    catalogue lacks are refused, not silently counted."""
    extra = tmp_path / "centre.toml"
    extra.write_text('[[procedures]]\nid = "ket-hon"\nsay = ["tu hon"]\n\n'
                     '[[procedures]]\nid = "nvqs"\nfield = "khac"\nname = "Đăng ký nghĩa vụ quân sự lần đầu"\n'
                     'say = ["nghia vu quan su", "di bo doi"]\ndocuments = ["Căn cước"]\nlegal_days = 1\nfee = "Không thu"\n',
                     encoding="utf-8")
    lines = tmp_path / "our-lines.tsv"
    lines.write_text("# our own lines, May 2026\n"
                     "con toi du 18 tuoi, dang ky nghia vu quan su\tkhac\tnvqs\tmay-2026\n"
                     "hai dua tu hon o phuong\tho-tich\tket-hon\tmay-2026\n"
                     "nha ve sinh o dau\tNONE\t-\tmay-2026\n", encoding="utf-8")
    done = _luot("--evaluate", str(lines), "--catalogue", str(extra), "--rules-only")
    assert done.returncode == 0, done.stderr
    tally = json.loads(done.stdout)["batches"]["may-2026"]
    assert tally["lines"] == 3 and tally["right"] == 3 and tally["procedure_right"] == 3
    without = _luot("--evaluate", str(lines), "--rules-only")  # the shipped catalogue has no "nvqs"
    assert without.returncode == 1 and "nvqs" in without.stderr
