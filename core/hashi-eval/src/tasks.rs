//! Task templates of Stability-AI's Japanese lm-evaluation-harness (branch `jp-stable`), byte for byte, and its
//! few-shot context construction (`Task.fewshot_context` with `rnd.sample`, or `_stratified_fewshot_examples`).
//! Variants: JCommonsenseQA 1.1 (0.1, 0.3), JNLI 1.3 (0.2, 0.3), JSQuAD 1.1 (0.1, 0.3) and 1.2 (0.3), JaQuAD 0.1
//! (0.1, 0.3), JCoLA 0.2 (0.3), MGSM 1.0 (0.3); EleutherAI's MNLI and QNLI (with its few-shot sampler:
//! `Random(1234).sample(train, k)` per document in dataset order); MARC-ja 1.1 (0.2, 0.3) and JaQKET v2 0.2
//! (0.1–0.3) as in the harness's `marc_ja.py` / `jaqket_v2.py`. Not yet: prompt versions 0.4–0.6.

use serde_json::Value;

use crate::pyrandom::PyRandom;

/// The Japanese Alpaca preamble of prompt version 0.3.
const ALPACA: &str = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n";
const QA01_DESCRIPTION: &str = "[題名]と[問題]から[質問]に対する[答え]を抜き出しなさい\n\n";
const JNLI_LABELS: [(&str, &str); 3] =
    [("entailment", "含意"), ("contradiction", "矛盾"), ("neutral", "中立")];

/// JaQKET v2's passages per question (upstream `TOP_K_LIMIT`).
const JAQKET_TOP_K: usize = 5;
/// Upstream's `_FALLBACK_DOC` (question, title, text) for few-shot examples without an answer-bearing passage.
const JAQKET_FALLBACK: (&str, &str, &str) = (
    "人気漫画『ドラえもん』の登場人物で、ジャイアンの苗字は剛田ですが、スネ夫の苗字は何でしょう?",
    "大長編ドラえもん",
    "通常の『ドラえもん』が掲載1回毎の完結を基本としているのに対し、『大長編』は映画1作の原作となる1つの長編が数回に分けて連載され、ドラえもん・野比のび太・源静香・剛田武(ジャイアン)・骨川スネ夫の5人が編毎に異なる様々な冒険に立ち向かう様が描かれる。単行本も『ドラえもん』から独立した『大長編ドラえもん』として発行されている。",
);

/// JaQKET passages `(title, text, has_answer)`: HF's columnar `ctxs` (`{"title": [...], "text": [...],
/// "has_answer": [...]}`) or the original JSON's list of objects.
fn jaqket_contexts(doc: &Value) -> Result<Vec<(String, String, bool)>, String> {
    let ctxs = doc.get("ctxs").ok_or("document has no ctxs")?;
    let bad = || "ctxs: expected {title, text, has_answer} lists or a list of passages".to_string();
    match ctxs {
        Value::Array(items) => items
            .iter()
            .map(|c| {
                let s = |k: &str| c.get(k).and_then(Value::as_str).map(String::from).ok_or_else(bad);
                Ok((s("title")?, s("text")?, c.get("has_answer").and_then(Value::as_bool).unwrap_or(false)))
            })
            .collect(),
        Value::Object(m) => {
            let list = |k: &str| m.get(k).and_then(Value::as_array).ok_or_else(bad);
            let (titles, texts, has) = (list("title")?, list("text")?, list("has_answer")?);
            if titles.len() != texts.len() || texts.len() != has.len() {
                return Err("ctxs: title, text and has_answer differ in length".into());
            }
            titles
                .iter()
                .zip(texts)
                .zip(has)
                .map(|((t, x), h)| {
                    Ok((
                        t.as_str().ok_or_else(bad)?.to_string(),
                        x.as_str().ok_or_else(bad)?.to_string(),
                        h.as_bool().ok_or_else(bad)?,
                    ))
                })
                .collect()
        }
        _ => Err(bad()),
    }
}

/// The dataset behind a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// JGLUE JCommonsenseQA.
    JCommonsenseQa,
    /// JGLUE JNLI.
    Jnli,
    /// JGLUE JSQuAD; `with_title` for version 1.2.
    JSquad {
        /// Version 1.2 puts the title in the 0.3 prompt.
        with_title: bool,
    },
    /// JaQuAD.
    JaQuad,
    /// JCoLA.
    JCola,
    /// MGSM (Japanese).
    Mgsm,
    /// JGLUE MARC-ja (product review sentiment).
    MarcJa,
    /// JaQKET v2 (quiz QA over the top-5 retrieved Wikipedia passages).
    JaqketV2,
    /// GLUE MNLI (EleutherAI harness format).
    Mnli,
    /// GLUE QNLI (EleutherAI harness format).
    Qnli,
}

/// How a task is scored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Log-likelihood of each choice after the context.
    Choices,
    /// Greedy generation until one of these strings.
    Generate {
        /// Stop strings.
        until: Vec<&'static str>,
    },
}

/// A task variant: dataset + prompt version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    /// The dataset.
    pub dataset: Dataset,
    /// Prompt version (1 = 0.1, 2 = 0.2, 3 = 0.3).
    pub prompt: u8,
}

impl Task {
    /// Every supported variant, by upstream name.
    pub const ALL: [(&'static str, Task); 18] = [
        ("jcommonsenseqa-1.1-0.1", Task { dataset: Dataset::JCommonsenseQa, prompt: 1 }),
        ("jcommonsenseqa-1.1-0.3", Task { dataset: Dataset::JCommonsenseQa, prompt: 3 }),
        ("jnli-1.3-0.2", Task { dataset: Dataset::Jnli, prompt: 2 }),
        ("jnli-1.3-0.3", Task { dataset: Dataset::Jnli, prompt: 3 }),
        ("jsquad-1.1-0.1", Task { dataset: Dataset::JSquad { with_title: false }, prompt: 1 }),
        ("jsquad-1.1-0.3", Task { dataset: Dataset::JSquad { with_title: false }, prompt: 3 }),
        ("jsquad-1.2-0.3", Task { dataset: Dataset::JSquad { with_title: true }, prompt: 3 }),
        ("jaquad-0.1-0.1", Task { dataset: Dataset::JaQuad, prompt: 1 }),
        ("jaquad-0.1-0.3", Task { dataset: Dataset::JaQuad, prompt: 3 }),
        ("jcola-0.2-0.3", Task { dataset: Dataset::JCola, prompt: 3 }),
        ("mgsm-1.0-0.3", Task { dataset: Dataset::Mgsm, prompt: 3 }),
        ("marc_ja-1.1-0.2", Task { dataset: Dataset::MarcJa, prompt: 2 }),
        ("marc_ja-1.1-0.3", Task { dataset: Dataset::MarcJa, prompt: 3 }),
        ("jaqket_v2-0.2-0.1", Task { dataset: Dataset::JaqketV2, prompt: 1 }),
        ("jaqket_v2-0.2-0.2", Task { dataset: Dataset::JaqketV2, prompt: 2 }),
        ("jaqket_v2-0.2-0.3", Task { dataset: Dataset::JaqketV2, prompt: 3 }),
        ("mnli", Task { dataset: Dataset::Mnli, prompt: 0 }),
        ("qnli", Task { dataset: Dataset::Qnli, prompt: 0 }),
    ];

    /// The variant with this upstream name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// The upstream name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, t)| *t == self).map_or("?", |(n, _)| n)
    }

    /// Folder of its data under `shared/data/eval/`, and the evaluation split.
    pub fn data(self) -> (&'static str, &'static str) {
        match self.dataset {
            Dataset::JCommonsenseQa => ("jcommonsenseqa", "validation"),
            Dataset::Jnli => ("jnli", "validation"),
            Dataset::JSquad { .. } => ("jsquad", "validation"),
            Dataset::JaQuad => ("jaquad", "validation"),
            Dataset::JCola => ("jcola", "validation"),
            Dataset::Mgsm => ("mgsm_ja", "test"),
            Dataset::MarcJa => ("marc_ja", "validation"),
            Dataset::JaqketV2 => ("jaqket_v2", "validation"),
            Dataset::Mnli => ("mnli", "validation"),
            Dataset::Qnli => ("qnli", "validation"),
        }
    }

    /// How it is scored.
    pub fn request(self) -> Request {
        match self.dataset {
            Dataset::JCommonsenseQa
            | Dataset::Jnli
            | Dataset::JCola
            | Dataset::Mnli
            | Dataset::Qnli
            | Dataset::MarcJa => Request::Choices,
            Dataset::JSquad { .. } | Dataset::JaQuad | Dataset::JaqketV2 => {
                Request::Generate { until: vec!["\n"] }
            }
            Dataset::Mgsm => Request::Generate { until: vec!["</s>", "\n"] },
        }
    }

    /// Whether the task comes from EleutherAI's harness (MNLI, QNLI): documents in dataset order, shots drawn
    /// with the task's own `Random(1234)`.
    pub fn eleuther(self) -> bool {
        matches!(self.dataset, Dataset::Mnli | Dataset::Qnli)
    }

    /// Whether few-shot examples are stratified by label.
    pub fn stratified(self) -> bool {
        matches!(self.dataset, Dataset::Jnli | Dataset::JCola)
    }

    fn description(self) -> &'static str {
        match (self.dataset, self.prompt) {
            (Dataset::Mnli | Dataset::Qnli, _) => "",
            (_, 3) => ALPACA,
            (Dataset::JCommonsenseQa, _) => "[問題]に対する[答え]を[選択肢]の中から選んでください。\n\n",
            (Dataset::MarcJa, _) => {
                "製品レビューをnegativeかpositiveのいずれかのセンチメントに分類してください。出力は小文字化してください。 \n\n"
            }
            (Dataset::JaqketV2, 2) => {
                "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。\n\n"
            }
            (Dataset::Jnli, _) => {
                "前提と仮説の関係を含意、矛盾、中立の中から回答してください。\n\n制約:\n\
                 - 前提から仮説が、論理的知識や常識的知識を用いて導出可能である場合は含意と出力\n\
                 - 前提と仮説が両立しえない場合は矛盾と出力\n- そのいずれでもない場合は中立と出力\n\n"
            }
            _ => QA01_DESCRIPTION,
        }
    }

    fn str_field<'a>(doc: &'a Value, key: &str) -> Result<&'a str, String> {
        doc.get(key).and_then(Value::as_str).ok_or_else(|| format!("document has no string field {key:?}"))
    }

    /// The answer choices of `doc` (choice tasks).
    pub fn choices(self, doc: &Value) -> Result<Vec<String>, String> {
        match self.dataset {
            Dataset::JCommonsenseQa => {
                (0..5).map(|i| Self::str_field(doc, &format!("choice{i}")).map(String::from)).collect()
            }
            Dataset::Jnli => Ok(JNLI_LABELS.iter().map(|(_, ja)| ja.to_string()).collect()),
            Dataset::JCola => Ok(vec![" はい".into(), " いいえ".into()]),
            Dataset::Mnli => Ok(vec![" True".into(), " Neither".into(), " False".into()]),
            Dataset::Qnli => Ok(vec![" yes".into(), " no".into()]),
            Dataset::MarcJa if self.prompt == 2 => Ok(vec!["positive".into(), "negative".into()]),
            Dataset::MarcJa => Ok(vec!["ポジティブ".into(), "ネガティブ".into()]),
            _ => Err(format!("{} is not a choice task", self.name())),
        }
    }

    /// Index of the correct choice (choice tasks).
    pub fn gold(self, doc: &Value) -> Result<usize, String> {
        let label = doc.get("label");
        match self.dataset {
            Dataset::JCommonsenseQa => {
                label.and_then(Value::as_u64).filter(|&l| l < 5).map(|l| l as usize).ok_or_else(
                    || match label {
                        Some(l) => format!(
                            "label {l} is not one of 0..4 (the index of the answer among choice0..choice4)"
                        ),
                        None => "document has no label 0..4".into(),
                    },
                )
            }
            // JGLUE's strings, or the ClassLabel index of the HF datasets (same order as the strings).
            Dataset::Jnli => {
                let names: Vec<&str> = JNLI_LABELS.iter().map(|(en, _)| *en).collect();
                Self::class_label(label, &names, "JNLI")
            }
            // GLUE's strings, or the HF `glue` ClassLabel index (MNLI 0/1/2 = entailment/neutral/contradiction,
            // QNLI 0/1 = entailment/not_entailment).
            Dataset::Mnli => Self::class_label(label, &["entailment", "neutral", "contradiction"], "MNLI"),
            Dataset::Qnli => Self::class_label(label, &["entailment", "not_entailment"], "QNLI"),
            // shunk031/JGLUE's ClassLabel order (positive = 0), or JGLUE's original strings.
            Dataset::MarcJa => match label {
                Some(Value::Number(n)) if n.as_u64().is_some_and(|l| l < 2) => {
                    Ok(n.as_u64().unwrap_or(0) as usize)
                }
                Some(Value::String(s)) if s == "positive" => Ok(0),
                Some(Value::String(s)) if s == "negative" => Ok(1),
                _ => Err("document has no label 0/1 or positive/negative".into()),
            },
            // label 1 = acceptable = " はい" (choice 0).
            Dataset::JCola => match label.and_then(Value::as_u64) {
                Some(1) => Ok(0),
                Some(0) => Ok(1),
                _ => Err("document has no label 0/1".into()),
            },
            _ => Err(format!("{} is not a choice task", self.name())),
        }
    }

    /// A label given as one of `names` or as its index (a HF `ClassLabel`).
    fn class_label(label: Option<&Value>, names: &[&str], dataset: &str) -> Result<usize, String> {
        let expected = || {
            let list: Vec<String> = names.iter().enumerate().map(|(i, n)| format!("{n} ({i})")).collect();
            list.join(", ")
        };
        match label {
            Some(Value::String(l)) => names
                .iter()
                .position(|x| *x == l.as_str())
                .ok_or_else(|| format!("unknown {dataset} label {l:?} (expected {})", expected())),
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|&i| (i as usize) < names.len())
                .map(|i| i as usize)
                .ok_or_else(|| format!("unknown {dataset} label {n} (expected {})", expected())),
            Some(other) => Err(format!("unknown {dataset} label {other} (expected {})", expected())),
            None => Err(format!("document has no label (expected {})", expected())),
        }
    }

    /// Gold answers (generation tasks).
    pub fn answers(self, doc: &Value) -> Result<Vec<String>, String> {
        match self.dataset {
            Dataset::JSquad { .. } | Dataset::JaQuad | Dataset::JaqketV2 => doc
                .get("answers")
                .and_then(|a| a.get("text"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                .ok_or_else(|| "document has no answers.text".into()),
            Dataset::Mgsm => {
                let n = doc.get("answer_number").ok_or("document has no answer_number")?;
                Ok(vec![n.to_string()])
            }
            _ => Ok(vec![self.target(doc)?]),
        }
    }

    /// `doc_to_target`.
    pub fn target(self, doc: &Value) -> Result<String, String> {
        match self.dataset {
            Dataset::JCommonsenseQa
            | Dataset::Jnli
            | Dataset::JCola
            | Dataset::Mnli
            | Dataset::Qnli
            | Dataset::MarcJa => Ok(self.choices(doc)?[self.gold(doc)?].clone()),
            Dataset::JSquad { .. } | Dataset::JaQuad | Dataset::JaqketV2 => {
                self.answers(doc)?.into_iter().next().ok_or_else(|| "document has no answer".into())
            }
            Dataset::Mgsm => {
                let a = Self::str_field(doc, "answer")?;
                Ok(a.strip_prefix("ステップごとの答え：").unwrap_or(a).to_string())
            }
        }
    }

    fn context_text(doc: &Value) -> Result<String, String> {
        let c = Self::str_field(doc, "context")?;
        Ok(c.rsplit("[SEP]").next().unwrap_or(c).trim().to_string())
    }

    /// `doc_to_text`.
    pub fn text(self, doc: &Value) -> Result<String, String> {
        let f = |k: &str| Self::str_field(doc, k);
        Ok(match (self.dataset, self.prompt) {
            (Dataset::JCommonsenseQa, 1) => {
                format!("[問題]:{}\n[選択肢]:[{}]\n[答え]:", f("question")?, self.choices(doc)?.join(", "))
            }
            (Dataset::JCommonsenseQa, _) => {
                let list: String = self.choices(doc)?.iter().map(|c| format!("- {c}\n")).collect();
                format!(
                    "### 指示:\n与えられた選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n{list}\n### 入力:\n{}\n\n### 応答:\n",
                    f("question")?
                )
            }
            (Dataset::Jnli, 2) => format!("前提:{}\n仮説:{}\n関係:", f("sentence1")?, f("sentence2")?),
            (Dataset::Jnli, _) => format!(
                "### 指示:\n与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n含意\n矛盾\n中立\n\n### 入力:\n前提：{}\n仮説：{}\n\n### 応答:\n",
                f("sentence1")?,
                f("sentence2")?
            ),
            (Dataset::JSquad { .. } | Dataset::JaQuad, 1) => format!(
                "[題名]:{}\n[問題]:{}\n[質問]:{}\n[答え]:",
                f("title")?,
                Self::context_text(doc)?,
                f("question")?
            ),
            (Dataset::JSquad { with_title }, _) => {
                let ctx = Self::context_text(doc)?;
                let ctx = if with_title { format!("{}\n{ctx}", f("title")?) } else { ctx };
                format!(
                    "### 指示:\n与えられた文脈から、質問に対する答えを抜き出してください。\n\n### 入力:\n文脈：{ctx}\n質問：{}\n\n### 応答:\n",
                    f("question")?
                )
            }
            (Dataset::JaQuad, _) => format!(
                "### 指示:\n与えられた文脈から、質問に対する答えを抜き出してください。\n\n### 入力:\n文脈：{}\n質問：{}\n\n### 応答:\n",
                Self::context_text(doc)?,
                f("question")?
            ),
            (Dataset::JCola, _) => format!(
                "### 指示:\n与えられた文が文法的であるかを回答してください。\n\n出力は以下から選択してください：\nはい\nいいえ\n\n### 入力:\n{}\n\n### 応答:\n",
                f("sentence")?
            ),
            (Dataset::Mnli, _) => {
                let h = f("hypothesis")?.trim();
                let dot = if h.ends_with('.') { "" } else { "." };
                format!("{}\nQuestion: {h}{dot} True, False or Neither?\nAnswer:", f("premise")?)
            }
            (Dataset::Qnli, _) => format!(
                "{}\n{}\nQuestion: Does this response answer the question?\nAnswer:",
                f("question")?,
                f("sentence")?
            ),
            (Dataset::MarcJa, 2) => format!("製品レビュー:{}\nセンチメント:", f("sentence")?),
            (Dataset::MarcJa, _) => format!(
                "### 指示:\n以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。\n\n### 入力:\n{}\n\n### 応答:\n",
                f("sentence")?
            ),
            (Dataset::JaqketV2, _) => {
                let ctxs = jaqket_contexts(doc)?;
                let top: Vec<&(String, String, bool)> = ctxs.iter().take(JAQKET_TOP_K).collect();
                self.jaqket_prompt(f("question")?, &top)
            }
            (Dataset::Mgsm, _) => {
                let q = f("question")?;
                format!(
                    "### 指示:\n与えられた問題に対して、ステップごとに答えを導き出してください。\n\n### 入力:\n{}\n\n### 応答:\n",
                    q.strip_prefix("問題：").unwrap_or(q)
                )
            }
        })
    }

    /// A few-shot example's prompt: `doc_to_text`, except JaQKET's `doc_to_answering_text` (only the first
    /// answer-bearing passage; upstream's fallback document when none has the answer).
    pub fn example_text(self, doc: &Value) -> Result<String, String> {
        if self.dataset != Dataset::JaqketV2 {
            return self.text(doc);
        }
        let ctxs = jaqket_contexts(doc)?;
        Ok(match ctxs.iter().find(|c| c.2) {
            Some(c) => self.jaqket_prompt(Self::str_field(doc, "question")?, &[c]),
            None => {
                let fallback = (JAQKET_FALLBACK.1.to_string(), JAQKET_FALLBACK.2.to_string(), true);
                self.jaqket_prompt(JAQKET_FALLBACK.0, &[&fallback])
            }
        })
    }

    /// JaQKET's prompt over passages `(title, text, has_answer)`.
    fn jaqket_prompt(self, question: &str, ctxs: &[&(String, String, bool)]) -> String {
        match self.prompt {
            1 => {
                let cands: Vec<String> =
                    ctxs.iter().map(|(t, x, _)| format!("[題名]:{t}\n[問題]:{x}")).collect();
                format!("{}\n[質問]:{question}\n[答え]:", cands.join("\n"))
            }
            2 => {
                let texts: Vec<&str> = ctxs.iter().map(|(_, x, _)| x.as_str()).collect();
                format!("文章:{}\n質問:{question}\n回答:", texts.join("\n"))
            }
            _ => {
                let texts: Vec<&str> = ctxs.iter().map(|(_, x, _)| x.as_str()).collect();
                format!(
                    "### 指示:\n与えられた文脈から、質問に対する答えを抜き出してください。\n\n### 入力:\n文脈：{}\n質問：{question}\n\n### 応答:\n",
                    texts.join("\n")
                )
            }
        }
    }

    /// Indices into `train` of the few-shot examples for one document, drawing from `rnd` as upstream does.
    pub fn fewshot_indices(
        self,
        train: &[Value],
        k: usize,
        rnd: &mut PyRandom,
    ) -> Result<Vec<usize>, String> {
        if k > train.len() {
            return Err(format!(
                "the few-shot pool has {} documents, fewer than the {k} shots asked for",
                train.len()
            ));
        }
        let all: Vec<usize> = (0..train.len()).collect();
        if !self.stratified() {
            return Ok(rnd.sample(&all, k));
        }
        // Strata by target, in first-occurrence order.
        let mut strata: Vec<(String, Vec<usize>)> = vec![];
        for (i, d) in train.iter().enumerate() {
            let t = self.target(d)?;
            match strata.iter_mut().find(|(s, _)| *s == t) {
                Some((_, v)) => v.push(i),
                None => strata.push((t, vec![i])),
            }
        }
        let n = train.len() as f64;
        let mut counts: Vec<usize> =
            strata.iter().map(|(_, v)| (v.len() as f64 / n * k as f64) as usize).collect();
        while counts.iter().sum::<usize>() < k {
            let min = *counts.iter().min().unwrap_or(&0);
            let i = counts.iter().position(|&c| c == min).unwrap_or(0);
            counts[i] += 1;
        }
        let mut picked = vec![];
        for ((target, members), &c) in strata.iter().zip(&counts) {
            if c > members.len() {
                return Err(format!(
                    "the few-shot pool has {} documents labelled {target:?}, fewer than the {c} that stratified \
                     sampling of {k} shots takes",
                    members.len()
                ));
            }
            picked.extend(rnd.sample(members, c));
        }
        rnd.shuffle(&mut picked);
        Ok(picked)
    }

    /// The full few-shot context of `doc`: description, `k` examples (`text + target`) each followed by the
    /// separator, then `doc`'s text. Returns the context and the example indices.
    pub fn fewshot_context(
        self,
        doc: &Value,
        train: &[Value],
        k: usize,
        rnd: &mut PyRandom,
    ) -> Result<(String, Vec<usize>), String> {
        let idx = self.fewshot_indices(train, k, rnd)?;
        let mut ctx = self.description().to_string();
        for &i in &idx {
            ctx.push_str(&self.example_text(&train[i])?);
            ctx.push_str(&self.target(&train[i])?);
            ctx.push_str("\n\n");
        }
        ctx.push_str(&self.text(doc)?);
        Ok((ctx, idx))
    }
}
