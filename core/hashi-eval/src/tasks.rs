//! Task templates of Stability-AI's Japanese lm-evaluation-harness (branch `jp-stable`, commit effdbeaf), byte
//! for byte, and its few-shot context construction (`Task.fewshot_context` with `rnd.sample`, or
//! `_stratified_fewshot_examples`), for every prompt version upstream defines for JCommonsenseQA 1.1, JNLI 1.3,
//! JCoLA 0.2, JSQuAD 1.1/1.2, JaQuAD 0.1, MGSM 1.0, MARC-ja 1.1 and JaQKET v2 0.2 ([`Prompt`]: 0.0–0.6 and
//! 0.2.1); EleutherAI's MNLI and QNLI (with its few-shot sampler: `Random(1234).sample(train, k)` per document in
//! dataset order). `Task::ALL` lists the variants by upstream name (`{task}-{VERSION}-{PROMPT_VERSION}`).

use serde_json::Value;

use crate::pyrandom::PyRandom;

/// The Japanese Alpaca preamble of prompt version 0.3.
const ALPACA: &str = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n";
/// Prompt version 0.6's Llama 2 chat opening with upstream's default Japanese system prompt (upstream reads a
/// `SYSTEM_PROMPT` environment variable instead when it is set; hashi always uses the default).
const LLAMA2: &str = "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n";
const QA01_DESCRIPTION: &str = "[題名]と[問題]から[質問]に対する[答え]を抜き出しなさい\n\n";
const EXTRACT: &str = "与えられた文脈から、質問に対する答えを抜き出してください。";
const JNLI_LABELS: [(&str, &str); 3] =
    [("entailment", "含意"), ("contradiction", "矛盾"), ("neutral", "中立")];

/// JaQKET v2's passages per question (upstream `TOP_K_LIMIT`, the HF loader's `num_contexts`).
const JAQKET_TOP_K: usize = 5;

/// JaQKET passages `(title, text)`: HF's columnar `ctxs` (`{"title": [...], "text": [...], ...}`) or the original
/// JSON's list of passage objects.
fn jaqket_contexts(doc: &Value) -> Result<Vec<(String, String)>, String> {
    let ctxs = doc.get("ctxs").ok_or("document has no ctxs")?;
    let bad = || "ctxs: expected {title, text} lists or a list of passages".to_string();
    match ctxs {
        Value::Array(items) => items
            .iter()
            .map(|c| {
                let s = |k: &str| c.get(k).and_then(Value::as_str).map(String::from).ok_or_else(bad);
                Ok((s("title")?, s("text")?))
            })
            .collect(),
        Value::Object(m) => {
            let list = |k: &str| m.get(k).and_then(Value::as_array).ok_or_else(bad);
            let (titles, texts) = (list("title")?, list("text")?);
            if titles.len() != texts.len() {
                return Err("ctxs: title and text differ in length".into());
            }
            titles
                .iter()
                .zip(texts)
                .map(|(t, x)| {
                    Ok((t.as_str().ok_or_else(bad)?.to_string(), x.as_str().ok_or_else(bad)?.to_string()))
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
        /// Version 1.2 puts the title in the prompt.
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

/// A jp-stable prompt version (upstream `PROMPT_VERSION`), named for the format its classes follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// 0.0: the English harness's question format in Japanese (JCoLA, MGSM); also EleutherAI's MNLI and QNLI.
    Plain,
    /// 0.1: the `[問題]:` / `[答え]:` format of the rinna/LINE 6B evaluation (JCommonsenseQA, JSQuAD, JaQuAD,
    /// JaQKET).
    Jglue,
    /// 0.2: Fintan's "ChatGPT vs BERT" format (JCommonsenseQA answers with the choice's number).
    Fintan,
    /// 0.2.1: JCommonsenseQA's fix of 0.2 (choices as a list, answered with the choice's text).
    FintanV21,
    /// 0.3: Japanese Alpaca (`### 指示:` / `### 入力:` / `### 応答:`).
    Alpaca,
    /// 0.4: rinna's instruction-tuned chat (`ユーザー:` / `システム:`, newlines written `<NL>`).
    Rinna,
    /// 0.5: rinna's bilingual instruction-tuned chat (as 0.4 with real newlines).
    RinnaBilingual,
    /// 0.6: Llama 2 chat (`[INST] ... [/INST]`, examples joined by ` </s><s>[INST] `).
    Llama2,
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
    /// The prompt version.
    pub prompt: Prompt,
}

const fn task(dataset: Dataset, prompt: Prompt) -> Task {
    Task { dataset, prompt }
}

const JSQUAD_11: Dataset = Dataset::JSquad { with_title: false };
const JSQUAD_12: Dataset = Dataset::JSquad { with_title: true };

impl Task {
    /// Every supported variant, by upstream name: all of jp-stable's versions of its eight Japanese tasks, then
    /// EleutherAI's MNLI and QNLI.
    pub const ALL: [(&'static str, Task); 52] = {
        use Dataset::*;
        use Prompt::*;
        [
            ("jcommonsenseqa-1.1-0.1", task(JCommonsenseQa, Jglue)),
            ("jcommonsenseqa-1.1-0.2", task(JCommonsenseQa, Fintan)),
            ("jcommonsenseqa-1.1-0.2.1", task(JCommonsenseQa, FintanV21)),
            ("jcommonsenseqa-1.1-0.3", task(JCommonsenseQa, Alpaca)),
            ("jcommonsenseqa-1.1-0.4", task(JCommonsenseQa, Rinna)),
            ("jcommonsenseqa-1.1-0.5", task(JCommonsenseQa, RinnaBilingual)),
            ("jcommonsenseqa-1.1-0.6", task(JCommonsenseQa, Llama2)),
            ("jnli-1.3-0.2", task(Jnli, Fintan)),
            ("jnli-1.3-0.3", task(Jnli, Alpaca)),
            ("jnli-1.3-0.4", task(Jnli, Rinna)),
            ("jnli-1.3-0.5", task(Jnli, RinnaBilingual)),
            ("jnli-1.3-0.6", task(Jnli, Llama2)),
            ("jcola-0.2-0.0", task(JCola, Plain)),
            ("jcola-0.2-0.3", task(JCola, Alpaca)),
            ("jcola-0.2-0.4", task(JCola, Rinna)),
            ("jcola-0.2-0.5", task(JCola, RinnaBilingual)),
            ("jcola-0.2-0.6", task(JCola, Llama2)),
            ("jsquad-1.1-0.1", task(JSQUAD_11, Jglue)),
            ("jsquad-1.1-0.2", task(JSQUAD_11, Fintan)),
            ("jsquad-1.2-0.2", task(JSQUAD_12, Fintan)),
            ("jsquad-1.1-0.3", task(JSQUAD_11, Alpaca)),
            ("jsquad-1.2-0.3", task(JSQUAD_12, Alpaca)),
            ("jsquad-1.1-0.4", task(JSQUAD_11, Rinna)),
            ("jsquad-1.2-0.4", task(JSQUAD_12, Rinna)),
            ("jsquad-1.1-0.5", task(JSQUAD_11, RinnaBilingual)),
            ("jsquad-1.2-0.5", task(JSQUAD_12, RinnaBilingual)),
            ("jsquad-1.1-0.6", task(JSQUAD_11, Llama2)),
            ("jsquad-1.2-0.6", task(JSQUAD_12, Llama2)),
            ("jaquad-0.1-0.1", task(JaQuad, Jglue)),
            ("jaquad-0.1-0.2", task(JaQuad, Fintan)),
            ("jaquad-0.1-0.3", task(JaQuad, Alpaca)),
            ("jaquad-0.1-0.4", task(JaQuad, Rinna)),
            ("jaquad-0.1-0.5", task(JaQuad, RinnaBilingual)),
            ("jaquad-0.1-0.6", task(JaQuad, Llama2)),
            ("mgsm-1.0-0.0", task(Mgsm, Plain)),
            ("mgsm-1.0-0.3", task(Mgsm, Alpaca)),
            ("mgsm-1.0-0.4", task(Mgsm, Rinna)),
            ("mgsm-1.0-0.5", task(Mgsm, RinnaBilingual)),
            ("mgsm-1.0-0.6", task(Mgsm, Llama2)),
            ("marc_ja-1.1-0.2", task(MarcJa, Fintan)),
            ("marc_ja-1.1-0.3", task(MarcJa, Alpaca)),
            ("marc_ja-1.1-0.4", task(MarcJa, Rinna)),
            ("marc_ja-1.1-0.5", task(MarcJa, RinnaBilingual)),
            ("marc_ja-1.1-0.6", task(MarcJa, Llama2)),
            ("jaqket_v2-0.2-0.1", task(JaqketV2, Jglue)),
            ("jaqket_v2-0.2-0.2", task(JaqketV2, Fintan)),
            ("jaqket_v2-0.2-0.3", task(JaqketV2, Alpaca)),
            ("jaqket_v2-0.2-0.4", task(JaqketV2, Rinna)),
            ("jaqket_v2-0.2-0.5", task(JaqketV2, RinnaBilingual)),
            ("jaqket_v2-0.2-0.6", task(JaqketV2, Llama2)),
            ("mnli", task(Mnli, Plain)),
            ("qnli", task(Qnli, Plain)),
        ]
    };

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

    /// Upstream's `SEP` inside the chat templates: `<NL>` for rinna's (0.4), a newline otherwise.
    fn nl(self) -> &'static str {
        if self.prompt == Prompt::Rinna { "<NL>" } else { "\n" }
    }

    /// How it is scored. Generation stops at upstream's `SEP` (`<NL>` under 0.4); MGSM at its `eos_token`
    /// placeholder `</s>` or a newline in every version.
    pub fn request(self) -> Request {
        match self.dataset {
            Dataset::JCommonsenseQa
            | Dataset::Jnli
            | Dataset::JCola
            | Dataset::Mnli
            | Dataset::Qnli
            | Dataset::MarcJa => Request::Choices,
            Dataset::JSquad { .. } | Dataset::JaQuad | Dataset::JaqketV2 => {
                Request::Generate { until: vec![self.nl()] }
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

    /// Upstream's `FEWSHOT_SEP`: after each example (and `SEP + SEP` = two newlines where a class sets none).
    pub fn fewshot_separator(self) -> &'static str {
        match self.prompt {
            Prompt::Rinna => "<NL>",
            Prompt::RinnaBilingual => "\n",
            Prompt::Llama2 => " </s><s>[INST] ",
            _ => "\n\n",
        }
    }

    /// The instruction of the instruction and chat formats (0.3–0.6); rinna's own lines are joined by its `SEP`.
    fn instruction(self) -> &'static str {
        match (self.dataset, self.prompt) {
            (Dataset::JCommonsenseQa, Prompt::Llama2) => {
                "与えられた5つの選択肢の中から、最適な答えを選んでください。"
            }
            (Dataset::JCommonsenseQa, _) => "与えられた選択肢の中から、最適な答えを選んでください。",
            (Dataset::Jnli, Prompt::Rinna) => {
                "与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：<NL>含意<NL>矛盾<NL>中立"
            }
            (Dataset::Jnli, Prompt::RinnaBilingual) => {
                "与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：\n含意\n矛盾\n中立"
            }
            (Dataset::Jnli, _) => {
                "与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n含意\n矛盾\n中立"
            }
            (Dataset::JCola, Prompt::Rinna) => {
                "与えられた文が文法的であるかを回答してください。出力は以下から選択してください：<NL>はい<NL>いいえ"
            }
            (Dataset::JCola, Prompt::RinnaBilingual) => {
                "与えられた文が文法的であるかを回答してください。出力は以下から選択してください：\nはい\nいいえ"
            }
            (Dataset::JCola, _) => {
                "与えられた文が文法的であるかを回答してください。\n\n出力は以下から選択してください：\nはい\nいいえ"
            }
            (Dataset::Mgsm, Prompt::Rinna | Prompt::RinnaBilingual) => {
                "与えられた問題をステップごとに解説してください。"
            }
            (Dataset::Mgsm, _) => "与えられた問題に対して、ステップごとに答えを導き出してください。",
            (Dataset::MarcJa, Prompt::Rinna | Prompt::RinnaBilingual) => {
                "与えられた製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"
            }
            (Dataset::MarcJa, _) => {
                "以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"
            }
            _ => EXTRACT,
        }
    }

    /// Upstream's `DESCRIPTION`, the text before the first example.
    fn description(self) -> String {
        let d = self.dataset;
        match self.prompt {
            Prompt::Plain => String::new(),
            Prompt::Jglue if d == Dataset::JCommonsenseQa => "[問題]に対する[答え]を[選択肢]の中から選んでください。\n\n".into(),
            Prompt::Jglue => QA01_DESCRIPTION.into(),
            Prompt::Fintan => match d {
                Dataset::JCommonsenseQa => "質問と回答の選択肢を入力として受け取り、選択肢から回答を選択してください。なお、回答は選択肢の番号(例:0)でするものとします。 \n\n",
                Dataset::Jnli => "前提と仮説の関係を含意、矛盾、中立の中から回答してください。\n\n制約:\n\
                     - 前提から仮説が、論理的知識や常識的知識を用いて導出可能である場合は含意と出力\n\
                     - 前提と仮説が両立しえない場合は矛盾と出力\n- そのいずれでもない場合は中立と出力\n\n",
                Dataset::MarcJa => "製品レビューをnegativeかpositiveのいずれかのセンチメントに分類してください。出力は小文字化してください。 \n\n",
                Dataset::JSquad { with_title: true } => "質問に対する回答を題名と文章から一言で抽出してください。回答は名詞で答えてください。\n\n",
                _ => "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。\n\n",
            }
            .into(),
            Prompt::FintanV21 => "与えられた選択肢の中から、最適な答えを選んでください。 \n\n".into(),
            Prompt::Alpaca => ALPACA.into(),
            Prompt::Rinna | Prompt::RinnaBilingual => {
                let nl = self.nl();
                format!("ユーザー: {}{nl}システム: 分かりました。{nl}", self.instruction())
            }
            Prompt::Llama2 => LLAMA2.into(),
        }
    }

    fn str_field<'a>(doc: &'a Value, key: &str) -> Result<&'a str, String> {
        doc.get(key).and_then(Value::as_str).ok_or_else(|| format!("document has no string field {key:?}"))
    }

    /// The answer choices of `doc` (choice tasks), as the continuations scored.
    pub fn choices(self, doc: &Value) -> Result<Vec<String>, String> {
        match self.dataset {
            Dataset::JCommonsenseQa => {
                (0..5).map(|i| Self::str_field(doc, &format!("choice{i}")).map(String::from)).collect()
            }
            Dataset::Jnli => Ok(JNLI_LABELS.iter().map(|(_, ja)| ja.to_string()).collect()),
            Dataset::JCola => Ok(vec![" はい".into(), " いいえ".into()]),
            Dataset::Mnli => Ok(vec![" True".into(), " Neither".into(), " False".into()]),
            Dataset::Qnli => Ok(vec![" yes".into(), " no".into()]),
            Dataset::MarcJa if self.prompt == Prompt::Fintan => {
                Ok(vec!["positive".into(), "negative".into()])
            }
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

    /// `doc_to_target`: what follows a few-shot example's prompt.
    pub fn target(self, doc: &Value) -> Result<String, String> {
        match self.dataset {
            // Version 0.2 shows the choice's number (while the requests still score the choices' texts).
            Dataset::JCommonsenseQa if self.prompt == Prompt::Fintan => Ok(self.gold(doc)?.to_string()),
            Dataset::JCommonsenseQa
            | Dataset::Jnli
            | Dataset::JCola
            | Dataset::Mnli
            | Dataset::Qnli
            | Dataset::MarcJa => Ok(self.choices(doc)?[self.gold(doc)?].clone()),
            Dataset::JSquad { .. } | Dataset::JaQuad | Dataset::JaqketV2 => {
                self.answers(doc)?.into_iter().next().ok_or_else(|| "document has no answer".into())
            }
            Dataset::Mgsm => Ok(Self::str_field(doc, "answer")?.replace("ステップごとの答え：", "")),
        }
    }

    fn context_text(doc: &Value) -> Result<String, String> {
        let c = Self::str_field(doc, "context")?;
        Ok(c.rsplit("[SEP]").next().unwrap_or(c).trim().to_string())
    }

    /// The input of the instruction formats (0.3–0.6) and the body of rinna's chat turn, lines joined by `nl`.
    fn input(self, doc: &Value, nl: &str) -> Result<String, String> {
        let f = |k: &str| Self::str_field(doc, k);
        Ok(match self.dataset {
            Dataset::JCommonsenseQa => f("question")?.to_string(),
            Dataset::Jnli => format!("前提：{}{nl}仮説：{}", f("sentence1")?, f("sentence2")?),
            Dataset::JCola | Dataset::MarcJa => f("sentence")?.to_string(),
            Dataset::JSquad { with_title: true } => {
                format!("文脈：{}{nl}{}{nl}質問：{}", f("title")?, Self::context_text(doc)?, f("question")?)
            }
            Dataset::JSquad { .. } | Dataset::JaQuad => {
                format!("文脈：{}{nl}質問：{}", Self::context_text(doc)?, f("question")?)
            }
            Dataset::JaqketV2 => {
                let texts: Vec<String> =
                    jaqket_contexts(doc)?.into_iter().take(JAQKET_TOP_K).map(|(_, x)| x).collect();
                format!("文脈：{}{nl}質問：{}", texts.join(nl), f("question")?)
            }
            Dataset::Mgsm => f("question")?.replace("問題：", ""),
            Dataset::Mnli | Dataset::Qnli => {
                return Err(format!("{} has no instruction format", self.name()));
            }
        })
    }

    /// `doc_to_text`: the prompt of a document (for a few-shot example too), before its target.
    pub fn text(self, doc: &Value) -> Result<String, String> {
        let f = |k: &str| Self::str_field(doc, k);
        let choice_list = |sep: &str| -> Result<String, String> {
            Ok(self.choices(doc)?.iter().map(|c| format!("- {c}")).collect::<Vec<_>>().join(sep))
        };
        let unknown = || Err(format!("{:?} has no prompt version {:?}", self.dataset, self.prompt));
        Ok(match self.prompt {
            Prompt::Alpaca | Prompt::Llama2 => {
                let mut instruction = self.instruction().to_string();
                if self.dataset == Dataset::JCommonsenseQa {
                    instruction
                        .push_str(&format!("出力は以下から選択してください：\n{}", choice_list("\n")?));
                }
                let input = match self.dataset {
                    Dataset::JCommonsenseQa if self.prompt == Prompt::Llama2 => {
                        format!("質問：{}", f("question")?)
                    }
                    _ => self.input(doc, "\n")?,
                };
                if self.prompt == Prompt::Alpaca {
                    format!("### 指示:\n{instruction}\n\n### 入力:\n{input}\n\n### 応答:\n")
                } else {
                    format!("{instruction}\n\n{input} [/INST] ")
                }
            }
            Prompt::Rinna | Prompt::RinnaBilingual => {
                let nl = self.nl();
                match self.dataset {
                    Dataset::JCommonsenseQa => format!(
                        "ユーザー: 質問：{}{nl}選択肢：{nl}{}{nl}システム: ",
                        f("question")?,
                        choice_list(nl)?
                    ),
                    // Upstream writes `<NL>` here in both 0.4 and 0.5.
                    Dataset::Mgsm => {
                        format!("ユーザー: 問題：{}<NL>システム: ステップごとの答え：", self.input(doc, nl)?)
                    }
                    _ => format!("ユーザー: {}{nl}システム: ", self.input(doc, nl)?),
                }
            }
            Prompt::Plain => match self.dataset {
                Dataset::JCola => format!("{}\n質問: この文は文法的ですか？\n答え:", f("sentence")?),
                Dataset::Mgsm => format!("問題：{}\nステップごとの答え：", self.input(doc, "\n")?),
                Dataset::Mnli => {
                    let h = f("hypothesis")?.trim();
                    let dot = if h.ends_with('.') { "" } else { "." };
                    format!("{}\nQuestion: {h}{dot} True, False or Neither?\nAnswer:", f("premise")?)
                }
                Dataset::Qnli => format!(
                    "{}\n{}\nQuestion: Does this response answer the question?\nAnswer:",
                    f("question")?,
                    f("sentence")?
                ),
                _ => return unknown(),
            },
            Prompt::Jglue => match self.dataset {
                Dataset::JCommonsenseQa => {
                    format!(
                        "[問題]:{}\n[選択肢]:[{}]\n[答え]:",
                        f("question")?,
                        self.choices(doc)?.join(", ")
                    )
                }
                Dataset::JSquad { with_title: false } | Dataset::JaQuad => format!(
                    "[題名]:{}\n[問題]:{}\n[質問]:{}\n[答え]:",
                    f("title")?,
                    Self::context_text(doc)?,
                    f("question")?
                ),
                Dataset::JaqketV2 => {
                    let ctxs = jaqket_contexts(doc)?;
                    let cands: Vec<String> = ctxs
                        .iter()
                        .take(JAQKET_TOP_K)
                        .map(|(t, x)| format!("[題名]:{t}\n[問題]:{x}"))
                        .collect();
                    format!("{}\n[質問]:{}\n[答え]:", cands.join("\n"), f("question")?)
                }
                _ => return unknown(),
            },
            Prompt::Fintan => match self.dataset {
                Dataset::JCommonsenseQa => {
                    let numbered: Vec<String> =
                        self.choices(doc)?.iter().enumerate().map(|(i, c)| format!("{i}.{c}")).collect();
                    format!("質問:{}\n選択肢:{}\n回答:", f("question")?, numbered.join(","))
                }
                Dataset::Jnli => format!("前提:{}\n仮説:{}\n関係:", f("sentence1")?, f("sentence2")?),
                Dataset::MarcJa => format!("製品レビュー:{}\nセンチメント:", f("sentence")?),
                Dataset::JSquad { with_title: false } | Dataset::JaQuad => {
                    format!("文章:{}\n質問:{}\n回答:", Self::context_text(doc)?, f("question")?)
                }
                Dataset::JSquad { with_title: true } => format!(
                    "題名:{}\n文章:{}\n質問:{}\n回答:",
                    f("title")?,
                    Self::context_text(doc)?,
                    f("question")?
                ),
                Dataset::JaqketV2 => {
                    let texts: Vec<String> =
                        jaqket_contexts(doc)?.into_iter().take(JAQKET_TOP_K).map(|(_, x)| x).collect();
                    format!("文章:{}\n質問:{}\n回答:", texts.join("\n"), f("question")?)
                }
                _ => return unknown(),
            },
            Prompt::FintanV21 => match self.dataset {
                Dataset::JCommonsenseQa => {
                    format!("質問：{}\n選択肢：\n{}\n回答：", f("question")?, choice_list("\n")?)
                }
                _ => return unknown(),
            },
        })
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

    /// The full few-shot context of `doc`: description, `k` examples (`text + target`) each followed by
    /// [`Task::fewshot_separator`], then `doc`'s text. Returns the context and the example indices.
    pub fn fewshot_context(
        self,
        doc: &Value,
        train: &[Value],
        k: usize,
        rnd: &mut PyRandom,
    ) -> Result<(String, Vec<usize>), String> {
        let idx = self.fewshot_indices(train, k, rnd)?;
        let sep = self.fewshot_separator();
        let mut ctx = self.description();
        for &i in &idx {
            ctx.push_str(&self.text(&train[i])?);
            ctx.push_str(&self.target(&train[i])?);
            ctx.push_str(sep);
        }
        ctx.push_str(&self.text(doc)?);
        Ok((ctx, idx))
    }

    /// MGSM's and JaQKET's `fewshot_context`: the `k`-shot context, drawn again with one shot fewer (from the
    /// same `rnd`, as upstream does) while `fits` says it is too long, down to zero shots. `fits` gets a context
    /// and tells whether its tokens leave room for the answer (upstream: tokens without special tokens ≤ the
    /// model's length − the generation budget).
    pub fn fitted_fewshot_context(
        self,
        doc: &Value,
        train: &[Value],
        k: usize,
        rnd: &mut PyRandom,
        mut fits: impl FnMut(&str) -> Result<bool, String>,
    ) -> Result<FittedContext, String> {
        let mut shots = k;
        loop {
            let (context, examples) = self.fewshot_context(doc, train, shots, rnd)?;
            let fit = fits(&context)?;
            if fit || shots == 0 {
                return Ok(FittedContext { context, examples, dropped: k - shots, fits: fit });
            }
            shots -= 1;
        }
    }
}

/// A context built by [`Task::fitted_fewshot_context`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FittedContext {
    /// The prompt.
    pub context: String,
    /// Indices into the few-shot pool of its examples.
    pub examples: Vec<usize>,
    /// Shots dropped to make it fit.
    pub dropped: usize,
    /// Whether it fits (false: even the zero-shot prompt is too long; `context` is that prompt).
    pub fits: bool,
}
