//! Task templates of Stability-AI's Japanese lm-evaluation-harness (branch `jp-stable`), byte for byte, and its
//! few-shot context construction (`Task.fewshot_context` with `rnd.sample`, or `_stratified_fewshot_examples`).
//! So far: JCommonsenseQA 1.1 (prompts 0.1, 0.3) and JNLI 1.3 (prompts 0.2, 0.3, stratified few-shot).

use serde_json::Value;

use crate::pyrandom::PyRandom;

/// The Japanese Alpaca preamble of prompt version 0.3.
const ALPACA: &str = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n";

/// A multiple-choice task variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// `jcommonsenseqa-1.1-0.1`.
    JCommonsenseQa01,
    /// `jcommonsenseqa-1.1-0.3`.
    JCommonsenseQa03,
    /// `jnli-1.3-0.2`.
    Jnli02,
    /// `jnli-1.3-0.3`.
    Jnli03,
}

const JNLI_LABELS: [(&str, &str); 3] =
    [("entailment", "含意"), ("contradiction", "矛盾"), ("neutral", "中立")];

impl Task {
    /// Every supported variant.
    pub const ALL: [Task; 4] = [Self::JCommonsenseQa01, Self::JCommonsenseQa03, Self::Jnli02, Self::Jnli03];

    /// The upstream registry name.
    pub fn name(self) -> &'static str {
        match self {
            Self::JCommonsenseQa01 => "jcommonsenseqa-1.1-0.1",
            Self::JCommonsenseQa03 => "jcommonsenseqa-1.1-0.3",
            Self::Jnli02 => "jnli-1.3-0.2",
            Self::Jnli03 => "jnli-1.3-0.3",
        }
    }

    /// The variant with this upstream name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Folder of its data under `shared/data/eval/`.
    pub fn data_dir(self) -> &'static str {
        match self {
            Self::JCommonsenseQa01 | Self::JCommonsenseQa03 => "jcommonsenseqa",
            Self::Jnli02 | Self::Jnli03 => "jnli",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::JCommonsenseQa01 => "[問題]に対する[答え]を[選択肢]の中から選んでください。\n\n",
            Self::Jnli02 => {
                "前提と仮説の関係を含意、矛盾、中立の中から回答してください。\n\n制約:\n\
                 - 前提から仮説が、論理的知識や常識的知識を用いて導出可能である場合は含意と出力\n\
                 - 前提と仮説が両立しえない場合は矛盾と出力\n- そのいずれでもない場合は中立と出力\n\n"
            }
            Self::JCommonsenseQa03 | Self::Jnli03 => ALPACA,
        }
    }

    /// Whether few-shot examples are stratified by label.
    pub fn stratified(self) -> bool {
        matches!(self, Self::Jnli02 | Self::Jnli03)
    }

    fn str_field<'a>(doc: &'a Value, key: &str) -> Result<&'a str, String> {
        doc.get(key).and_then(Value::as_str).ok_or_else(|| format!("document has no string field {key:?}"))
    }

    /// The answer choices of `doc`.
    pub fn choices(self, doc: &Value) -> Result<Vec<String>, String> {
        match self {
            Self::JCommonsenseQa01 | Self::JCommonsenseQa03 => {
                (0..5).map(|i| Self::str_field(doc, &format!("choice{i}")).map(String::from)).collect()
            }
            Self::Jnli02 | Self::Jnli03 => Ok(JNLI_LABELS.iter().map(|(_, ja)| ja.to_string()).collect()),
        }
    }

    /// Index of the correct choice.
    pub fn gold(self, doc: &Value) -> Result<usize, String> {
        match self {
            Self::JCommonsenseQa01 | Self::JCommonsenseQa03 => doc
                .get("label")
                .and_then(Value::as_u64)
                .filter(|&l| l < 5)
                .map(|l| l as usize)
                .ok_or_else(|| "document has no label 0..4".into()),
            Self::Jnli02 | Self::Jnli03 => {
                let label = Self::str_field(doc, "label")?;
                JNLI_LABELS
                    .iter()
                    .position(|(en, _)| *en == label)
                    .ok_or_else(|| format!("unknown JNLI label {label:?}"))
            }
        }
    }

    /// `doc_to_target`: the correct choice's text.
    pub fn target(self, doc: &Value) -> Result<String, String> {
        Ok(self.choices(doc)?[self.gold(doc)?].clone())
    }

    /// `doc_to_text`.
    pub fn text(self, doc: &Value) -> Result<String, String> {
        Ok(match self {
            Self::JCommonsenseQa01 => format!(
                "[問題]:{}\n[選択肢]:[{}]\n[答え]:",
                Self::str_field(doc, "question")?,
                self.choices(doc)?.join(", ")
            ),
            Self::JCommonsenseQa03 => {
                let list: String = self.choices(doc)?.iter().map(|c| format!("- {c}\n")).collect();
                format!(
                    "### 指示:\n与えられた選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n{list}\n### 入力:\n{}\n\n### 応答:\n",
                    Self::str_field(doc, "question")?
                )
            }
            Self::Jnli02 => format!(
                "前提:{}\n仮説:{}\n関係:",
                Self::str_field(doc, "sentence1")?,
                Self::str_field(doc, "sentence2")?
            ),
            Self::Jnli03 => format!(
                "### 指示:\n与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n含意\n矛盾\n中立\n\n### 入力:\n前提：{}\n仮説：{}\n\n### 応答:\n",
                Self::str_field(doc, "sentence1")?,
                Self::str_field(doc, "sentence2")?
            ),
        })
    }

    /// Indices into `train` of the few-shot examples for one document, drawing from `rnd` as upstream does.
    pub fn fewshot_indices(
        self,
        train: &[Value],
        k: usize,
        rnd: &mut PyRandom,
    ) -> Result<Vec<usize>, String> {
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
        for ((_, members), &c) in strata.iter().zip(&counts) {
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
            ctx.push_str(&self.text(&train[i])?);
            ctx.push_str(&self.target(&train[i])?);
            ctx.push_str("\n\n");
        }
        ctx.push_str(&self.text(doc)?);
        Ok((ctx, idx))
    }
}
