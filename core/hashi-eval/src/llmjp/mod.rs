//! The Swallow evaluation protocol: llm-jp-eval v1.3.0 as Swallow runs it (`swallow-llm/swallow-evaluation`
//! @ 57c4ecd, `config_no-sample.yaml`): JEMHopQA, NIILC, JSQuAD and JCommonsenseQA at 4 shots, JMMLU at 5, each
//! prompt the Japanese Alpaca template with the task's instruction and the same few-shot examples for every
//! document, greedy generation of at most the task's `output_length` new tokens with no stop strings, and the
//! answer/metrics of [`scoring`].
//!
//! Task names carry the protocol and version: `llmjp-1.3.0:jemhopqa` … (`LlmJpTask::ALL`). Data: the upstream
//! sources as JSONL (`TASK/train.jsonl` is the few-shot pool, the evaluation split as [`LlmJpTask::files`]).
//! Upstream's few-shot pick: the pool (NIILC without its `-`-only questions) shuffled by `random.seed(42)`,
//! `random.shuffle` (CPython's MT19937, [`PyRandom`]), its first 90 % is the train split and the shots are its
//! first k; JMMLU's shots are the first 5 of its train file, which is already upstream's train split in order.

pub mod jmmlu;
pub mod scoring;

use serde_json::Value;

use crate::PyRandom;

/// The protocol's name and version, the prefix of its task names.
pub const PROTOCOL: &str = "llmjp-1.3.0";

/// The Japanese Alpaca preamble of llm-jp-eval's prompt.
const PREAMBLE: &str =
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。";

/// A task of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmJpTask {
    /// JEMHopQA v1.0 (multi-hop QA; `char_f1`).
    JemHopQa,
    /// NIILC (encyclopaedic QA; `char_f1`).
    Niilc,
    /// JSQuAD v1.1 (reading comprehension; `char_f1`).
    JSquad,
    /// JCommonsenseQA v1.1 (5-way multiple choice, answered by the choice's number; `exact_match`).
    JCommonsenseQa,
    /// JMMLU (4-way multiple choice, answered by the letter; `exact_match`, per-category micro-averages).
    Jmmlu,
}

/// A task's official metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Post-processed prediction equals the NFKC gold.
    ExactMatch,
    /// fuzzywuzzy's token-sort ratio / 100.
    CharF1,
}

impl Metric {
    /// Upstream's metric name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ExactMatch => "exact_match",
            Self::CharF1 => "char_f1",
        }
    }
}

/// One upstream `Sample`: the `input` put into the prompt and the gold `output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The text after `### 入力:`.
    pub input: String,
    /// The gold answer, as upstream stores it (not yet NFKC-normalised).
    pub output: String,
}

impl LlmJpTask {
    /// Every task, by its hashi name.
    pub const ALL: [(&'static str, LlmJpTask); 5] = [
        ("llmjp-1.3.0:jemhopqa", LlmJpTask::JemHopQa),
        ("llmjp-1.3.0:niilc", LlmJpTask::Niilc),
        ("llmjp-1.3.0:jsquad", LlmJpTask::JSquad),
        ("llmjp-1.3.0:jcommonsenseqa", LlmJpTask::JCommonsenseQa),
        ("llmjp-1.3.0:jmmlu", LlmJpTask::Jmmlu),
    ];

    /// The task with this name (`llmjp-1.3.0:jsquad`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// The hashi name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, t)| *t == self).map_or("", |(n, _)| n)
    }

    /// The data folder and the evaluation split's file stem.
    pub fn files(self) -> (&'static str, &'static str) {
        match self {
            Self::JemHopQa => ("jemhopqa", "validation"),
            Self::Niilc => ("niilc", "test"),
            Self::JSquad => ("jsquad", "validation"),
            Self::JCommonsenseQa => ("jcommonsenseqa", "validation"),
            Self::Jmmlu => ("jmmlu", "test"),
        }
    }

    /// The task's instruction (upstream `output_info.instruction`).
    pub fn instruction(self) -> &'static str {
        match self {
            Self::JemHopQa => {
                "質問を入力とし、回答を出力してください。回答の他には何も含めないことを厳守してください。回答が'はい'と'いいえ'で答えることができる場合、'YES'と'NO'で答えてください。"
            }
            Self::Niilc => {
                "質問に対する答えを出力してください。回答の他には何も含めないことを厳守してください。答えが複数の場合、コンマ（,）で繋げてください。"
            }
            Self::JSquad => {
                "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。 それ以外には何も含めないことを厳守してください。"
            }
            Self::JCommonsenseQa => {
                "質問と回答の選択肢を入力として受け取り、選択肢から回答を選択してください。なお、回答は選択肢の番号（例：0）でするものとします。 回答となる数値をint型で返し、他には何も含めないことを厳守してください。"
            }
            Self::Jmmlu => {
                "与えられた質問と選択肢から、最も適切な回答を選択してください。なお、回答には選択肢のアルファベット（例：A）のみを含め、他には何も含めないことを厳守してください。"
            }
        }
    }

    /// New tokens at most (upstream `output_length`, given to generation as `max_new_tokens`).
    pub fn output_length(self) -> usize {
        match self {
            Self::JemHopQa => 15,
            Self::Niilc => 180,
            Self::JSquad => 25,
            Self::JCommonsenseQa | Self::Jmmlu => 1,
        }
    }

    /// The official metric.
    pub fn metric(self) -> Metric {
        match self {
            Self::JemHopQa | Self::Niilc | Self::JSquad => Metric::CharF1,
            Self::JCommonsenseQa | Self::Jmmlu => Metric::ExactMatch,
        }
    }

    /// Shots in Swallow's run (`GENERAL_NUM_FEWSHOT` 4, `JMMLU_NUM_FEWSHOT` 5).
    pub fn num_fewshot(self) -> usize {
        match self {
            Self::Jmmlu => 5,
            _ => 4,
        }
    }

    /// The answer labels of a multiple-choice task (for chance and majority baselines); none for QA.
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Self::JCommonsenseQa => &["0", "1", "2", "3", "4"],
            Self::Jmmlu => &["A", "B", "C", "D"],
            _ => &[],
        }
    }

    /// Upstream's `Sample` of one source record, or `None` for a record upstream leaves out (a NIILC question
    /// whose only answer is `-`).
    ///
    /// # Errors
    /// A message naming the missing or mistyped field.
    pub fn sample(self, doc: &Value) -> Result<Option<Sample>, String> {
        let s = |k: &str| -> Result<&str, String> {
            doc.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("field {k:?} is missing or not a string"))
        };
        Ok(Some(match self {
            Self::JemHopQa => {
                Sample { input: format!("質問：{}", s("question")?), output: s("answer")?.into() }
            }
            Self::Niilc => {
                let answers = doc
                    .get("answers")
                    .and_then(Value::as_array)
                    .ok_or("field \"answers\" is missing or not a list")?;
                let mut kept = vec![];
                for a in answers {
                    // Upstream reads the XML with xmltodict, which strips text; empty answers are dropped.
                    let a = a.as_str().ok_or("field \"answers\": not a list of strings")?.trim();
                    if !a.is_empty() {
                        kept.push(a);
                    }
                }
                if kept.is_empty() {
                    return Err("field \"answers\": no non-empty answer".into());
                }
                if kept == ["-"] {
                    return Ok(None);
                }
                Sample { input: format!("質問：{}", s("text")?.trim()), output: kept.join(",") }
            }
            Self::JSquad => {
                let first = doc
                    .get("answers")
                    .and_then(|a| a.get("text"))
                    .and_then(Value::as_array)
                    .and_then(|t| t.first())
                    .and_then(Value::as_str)
                    .ok_or("field \"answers.text\" is missing or holds no string")?;
                Sample {
                    input: format!("文章：{}\n質問：{}", s("context")?, s("question")?),
                    output: first.into(),
                }
            }
            Self::JCommonsenseQa => {
                let mut choices = vec![];
                for i in 0..5 {
                    choices.push(format!("{i}.{}", s(&format!("choice{i}"))?));
                }
                let label = doc.get("label").and_then(Value::as_u64).ok_or("field \"label\" is not 0–4")?;
                if label > 4 {
                    return Err(format!("field \"label\" is {label}, not 0–4"));
                }
                Sample {
                    input: format!("質問：{}\n選択肢：{}", s("question")?, choices.join(",")),
                    output: label.to_string(),
                }
            }
            Self::Jmmlu => {
                let mut choices = vec![];
                for c in ["A", "B", "C", "D"] {
                    choices.push(format!("{c}.{}", s(c)?));
                }
                let answer = s("answer")?;
                if !["A", "B", "C", "D"].contains(&answer) {
                    return Err(format!("field \"answer\" is {answer:?}, not A–D"));
                }
                Sample {
                    input: format!("質問：{}\n選択肢：{}", s("question")?, choices.join(",")),
                    output: answer.into(),
                }
            }
        }))
    }

    /// Upstream's few-shot examples: `(line of the pool file, sample)` for the first `k` of the train split.
    ///
    /// # Errors
    /// A message naming the pool line that is not a valid record, or a pool too small for `k` shots.
    pub fn fewshots(self, pool: &[Value], k: usize) -> Result<Vec<(usize, Sample)>, String> {
        let mut kept = vec![];
        for (i, doc) in pool.iter().enumerate() {
            match self.sample(doc) {
                Ok(Some(s)) => kept.push((i, s)),
                Ok(None) => {}
                Err(e) => return Err(format!("few-shot pool record {}: {e}", i + 1)),
            }
        }
        let train = match self {
            Self::Jmmlu => kept,
            _ => {
                let mut order: Vec<usize> = (0..kept.len()).collect();
                PyRandom::new(42).shuffle(&mut order);
                let n = kept.len() * 9 / 10;
                order.truncate(n);
                order.into_iter().map(|j| kept[j].clone()).collect()
            }
        };
        if train.len() < k {
            return Err(format!("the few-shot pool gives {} examples, fewer than {k}", train.len()));
        }
        Ok(train.into_iter().take(k).collect())
    }
}

/// The part of every prompt of a task before the document's input: the preamble, `### 指示:` and the instruction,
/// each shot as `### 入力:` / `### 応答:` blocks, and the open `### 入力:` block.
pub fn prompt_head(instruction: &str, shots: &[Sample]) -> String {
    let mut p = format!("{PREAMBLE}\n\n### 指示:\n{instruction}");
    for s in shots {
        p.push_str(&format!("\n\n### 入力:\n{}\n\n### 応答:\n{}", s.input, s.output));
    }
    p.push_str("\n\n### 入力:\n");
    p
}

/// The prompt given to the model: [`prompt_head`], the document's input and an open `### 応答:` block
/// (llm-jp-eval's `get_evaluation_prompt` with Swallow's `custom_prompt_template = None`).
pub fn prompt(instruction: &str, shots: &[Sample], input: &str) -> String {
    format!("{}{input}\n\n### 応答:\n", prompt_head(instruction, shots))
}
