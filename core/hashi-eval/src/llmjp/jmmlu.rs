//! JMMLU subjects and their categories. Swallow reports JMMLU as the micro-average over every question
//! (`llm-jp-eval/scripts/jmmlu_statistics.py` also gives each subject's); the categories are MMLU's own grouping
//! (`hendrycks/test`, `categories.py`: STEM, humanities, social sciences, other), with JMMLU's two added subjects,
//! `japanese_history` and `world_history`, under humanities as MMLU's history subjects are.

/// The category of a JMMLU subject, or `None` for a subject MMLU and JMMLU do not have.
pub fn category(subject: &str) -> Option<&'static str> {
    Some(match subject {
        "abstract_algebra"
        | "astronomy"
        | "college_biology"
        | "college_chemistry"
        | "college_computer_science"
        | "college_mathematics"
        | "college_physics"
        | "computer_security"
        | "conceptual_physics"
        | "electrical_engineering"
        | "elementary_mathematics"
        | "high_school_biology"
        | "high_school_chemistry"
        | "high_school_computer_science"
        | "high_school_mathematics"
        | "high_school_physics"
        | "high_school_statistics"
        | "machine_learning" => "STEM",
        "formal_logic"
        | "high_school_european_history"
        | "high_school_us_history"
        | "high_school_world_history"
        | "international_law"
        | "jurisprudence"
        | "logical_fallacies"
        | "moral_disputes"
        | "moral_scenarios"
        | "philosophy"
        | "prehistory"
        | "professional_law"
        | "world_religions"
        | "japanese_history"
        | "world_history" => "humanities",
        "econometrics"
        | "high_school_geography"
        | "high_school_government_and_politics"
        | "high_school_macroeconomics"
        | "high_school_microeconomics"
        | "high_school_psychology"
        | "human_sexuality"
        | "professional_psychology"
        | "public_relations"
        | "security_studies"
        | "sociology"
        | "us_foreign_policy" => "social sciences",
        "anatomy"
        | "business_ethics"
        | "clinical_knowledge"
        | "college_medicine"
        | "global_facts"
        | "human_aging"
        | "management"
        | "marketing"
        | "medical_genetics"
        | "miscellaneous"
        | "nutrition"
        | "professional_accounting"
        | "professional_medicine"
        | "virology" => "other",
        _ => return None,
    })
}
