//! The pipeline tasks of the toolkit (`HF_TASK`), their aliases, and inference of the task from a
//! model's `config.json` when `HF_TASK` is unset.
//!
//! Task ids follow transformers' `SUPPORTED_TASKS` / `TASK_ALIASES`
//! (`transformers/pipelines/__init__.py`).

use std::fmt;
use std::str::FromStr;

use crate::error::ToolkitError;

/// A pipeline task. Aliases (`sentiment-analysis`, `ner`, `translation_en_to_de`) parse to their
/// canonical task; [`TaskSpec`] keeps what was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// `text-classification` (alias `sentiment-analysis`).
    TextClassification,
    /// `token-classification` (alias `ner`).
    TokenClassification,
    /// `question-answering`.
    QuestionAnswering,
    /// `feature-extraction`.
    FeatureExtraction,
    /// `fill-mask`.
    FillMask,
    /// `summarization`.
    Summarization,
    /// `translation` and `translation_xx_to_yy`.
    Translation,
    /// `text2text-generation`.
    Text2TextGeneration,
    /// `text-generation`.
    TextGeneration,
    /// `conversational`.
    Conversational,
    /// `audio-classification`.
    AudioClassification,
    /// `automatic-speech-recognition`.
    AutomaticSpeechRecognition,
    /// `image-classification`.
    ImageClassification,
    /// `image-segmentation`.
    ImageSegmentation,
    /// `object-detection`.
    ObjectDetection,
    /// `table-question-answering`.
    TableQuestionAnswering,
    /// `zero-shot-classification`.
    ZeroShotClassification,
    /// `zero-shot-image-classification`.
    ZeroShotImageClassification,
}

impl Task {
    /// Every task, in the order of the toolkit's documentation.
    pub const ALL: [Task; 18] = [
        Task::TextClassification,
        Task::TokenClassification,
        Task::QuestionAnswering,
        Task::FeatureExtraction,
        Task::FillMask,
        Task::Summarization,
        Task::Translation,
        Task::Text2TextGeneration,
        Task::TextGeneration,
        Task::Conversational,
        Task::AudioClassification,
        Task::AutomaticSpeechRecognition,
        Task::ImageClassification,
        Task::ImageSegmentation,
        Task::ObjectDetection,
        Task::TableQuestionAnswering,
        Task::ZeroShotClassification,
        Task::ZeroShotImageClassification,
    ];

    /// The canonical HF id.
    pub fn id(self) -> &'static str {
        match self {
            Task::TextClassification => "text-classification",
            Task::TokenClassification => "token-classification",
            Task::QuestionAnswering => "question-answering",
            Task::FeatureExtraction => "feature-extraction",
            Task::FillMask => "fill-mask",
            Task::Summarization => "summarization",
            Task::Translation => "translation",
            Task::Text2TextGeneration => "text2text-generation",
            Task::TextGeneration => "text-generation",
            Task::Conversational => "conversational",
            Task::AudioClassification => "audio-classification",
            Task::AutomaticSpeechRecognition => "automatic-speech-recognition",
            Task::ImageClassification => "image-classification",
            Task::ImageSegmentation => "image-segmentation",
            Task::ObjectDetection => "object-detection",
            Task::TableQuestionAnswering => "table-question-answering",
            Task::ZeroShotClassification => "zero-shot-classification",
            Task::ZeroShotImageClassification => "zero-shot-image-classification",
        }
    }

    /// Whether a list of `inputs` is a batch of independent inputs answered by a list of the same
    /// length (so a long list may be run in parts); not so for chat messages or tables.
    pub fn batches_inputs(self) -> bool {
        matches!(
            self,
            Task::TextClassification
                | Task::FeatureExtraction
                | Task::ZeroShotClassification
                | Task::FillMask
                | Task::TokenClassification
                | Task::QuestionAnswering
        )
    }

    /// The media types a request to this task may have besides JSON, CSV and JSON Lines: bodies
    /// handed to the pipeline as they are (an image task's image files). The same list the
    /// task's pipeline gives (`Pipeline::raw_media_types`), known without the engine, so that a
    /// proxy can negotiate a request it only forwards.
    pub fn raw_media_types(self) -> &'static [&'static str] {
        match self {
            Task::ImageClassification
            | Task::ImageSegmentation
            | Task::ObjectDetection
            | Task::ZeroShotImageClassification => crate::codec::IMAGE_MEDIA_TYPES,
            _ => &[],
        }
    }

    /// Whether this build serves the task.
    pub fn is_implemented(self) -> bool {
        matches!(
            self,
            Task::TextClassification
                | Task::FeatureExtraction
                | Task::ZeroShotClassification
                | Task::FillMask
                | Task::TokenClassification
                | Task::QuestionAnswering
                | Task::TableQuestionAnswering
                | Task::TextGeneration
                | Task::Conversational
                | Task::Text2TextGeneration
                | Task::Summarization
                | Task::Translation
                | Task::ImageClassification
                | Task::ImageSegmentation
                | Task::ObjectDetection
                | Task::ZeroShotImageClassification
        )
    }

    /// The ids of the tasks this build serves, comma separated (for error messages).
    pub fn implemented_list() -> String {
        let mut ids: Vec<&str> = Task::ALL
            .iter()
            .filter(|t| t.is_implemented())
            .map(|t| t.id())
            .collect();
        ids.push("sentiment-analysis");
        ids.join(", ")
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A task as requested through `HF_TASK`: the canonical task plus, for translation, the language
/// pair of a `translation_xx_to_yy` id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// The canonical task.
    pub task: Task,
    /// What `HF_TASK` said, e.g. `sentiment-analysis` or `translation_en_to_fr`.
    pub requested: String,
    /// `(source, target)` for `translation_xx_to_yy`.
    pub languages: Option<(String, String)>,
}

impl FromStr for TaskSpec {
    type Err = ToolkitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let requested = s.trim().to_owned();
        let spec = |task| TaskSpec {
            task,
            requested: requested.clone(),
            languages: None,
        };
        if let Some(task) = Task::ALL.iter().copied().find(|t| t.id() == requested) {
            return Ok(spec(task));
        }
        match requested.as_str() {
            "sentiment-analysis" => return Ok(spec(Task::TextClassification)),
            "ner" => return Ok(spec(Task::TokenClassification)),
            _ => {}
        }
        if let Some(pair) = requested.strip_prefix("translation_") {
            if let Some((src, tgt)) = pair.split_once("_to_") {
                if !src.is_empty() && !tgt.is_empty() && !tgt.contains('_') {
                    return Ok(TaskSpec {
                        task: Task::Translation,
                        requested: requested.clone(),
                        languages: Some((src.to_owned(), tgt.to_owned())),
                    });
                }
            }
        }
        let all: Vec<&str> = Task::ALL.iter().map(|t| t.id()).collect();
        Err(ToolkitError::Config(format!(
            "unknown task {requested:?} (HF_TASK); known tasks: {}, plus the aliases sentiment-analysis, ner and translation_xx_to_yy",
            all.join(", ")
        )))
    }
}

impl TaskSpec {
    /// Fails with a clear message when this build does not serve the task.
    pub fn ensure_implemented(&self) -> Result<(), ToolkitError> {
        if self.task.is_implemented() {
            Ok(())
        } else {
            Err(ToolkitError::Config(format!(
                "task {:?} is not implemented yet by this server; implemented tasks: {}",
                self.requested,
                Task::implemented_list()
            )))
        }
    }

    /// Infers the task from `config.json`'s `architectures`, as the toolkit does when `HF_TASK` is
    /// unset, but without its last-match bugs: the most specific rule wins (so
    /// `TapasForQuestionAnswering` is table question answering and
    /// `WhisperForConditionalGeneration` is speech recognition), and bare encoders (`BertModel`)
    /// are feature extraction.
    pub fn infer(architectures: &[String]) -> Result<TaskSpec, ToolkitError> {
        let Some(arch) = architectures.first() else {
            return Err(ToolkitError::Config(format!(
                "HF_TASK is not set and config.json has no `architectures` to infer it from; set HF_TASK to one of: {}",
                Task::implemented_list()
            )));
        };
        // Ordered: specific names first, then suffixes.
        const EXACT: [(&str, Task); 7] = [
            ("TapasForQuestionAnswering", Task::TableQuestionAnswering),
            (
                "WhisperForConditionalGeneration",
                Task::AutomaticSpeechRecognition,
            ),
            (
                "Speech2TextForConditionalGeneration",
                Task::AutomaticSpeechRecognition,
            ),
            ("CLIPModel", Task::ZeroShotImageClassification),
            ("SiglipModel", Task::ZeroShotImageClassification),
            ("GPT2LMHeadModel", Task::TextGeneration),
            ("T5WithLMHeadModel", Task::Text2TextGeneration),
        ];
        const SUFFIX: [(&str, Task); 16] = [
            ("ForQuestionAnswering", Task::QuestionAnswering),
            ("ForTokenClassification", Task::TokenClassification),
            ("ForAudioClassification", Task::AudioClassification),
            ("ForImageClassification", Task::ImageClassification),
            // DeiT's distilled classifier (the toolkit cannot infer it and fails at start-up)
            (
                "ForImageClassificationWithTeacher",
                Task::ImageClassification,
            ),
            ("ForSemanticSegmentation", Task::ImageSegmentation),
            ("ForObjectDetection", Task::ObjectDetection),
            ("ForCTC", Task::AutomaticSpeechRecognition),
            ("ForSequenceClassification", Task::TextClassification),
            ("ForMaskedLM", Task::FillMask),
            ("ForCausalLM", Task::TextGeneration),
            ("LMHeadModel", Task::TextGeneration),
            ("ForConditionalGeneration", Task::Text2TextGeneration),
            ("MTModel", Task::Translation),
            ("EncoderDecoderModel", Task::Text2TextGeneration),
            ("Model", Task::FeatureExtraction),
        ];
        let task = EXACT
            .iter()
            .find(|(name, _)| name == arch)
            .or_else(|| SUFFIX.iter().find(|(suffix, _)| arch.ends_with(suffix)))
            .map(|(_, t)| *t);
        match task {
            Some(task) => Ok(TaskSpec { task, requested: task.id().to_owned(), languages: None }),
            None => Err(ToolkitError::Config(format!(
                "HF_TASK is not set and the task cannot be inferred from the architecture {arch:?} in config.json; set HF_TASK to one of: {}",
                Task::implemented_list()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_aliases() {
        for t in Task::ALL {
            assert_eq!(t.id().parse::<TaskSpec>().unwrap().task, t);
        }
        let s: TaskSpec = "sentiment-analysis".parse().unwrap();
        assert_eq!(
            (s.task, s.requested.as_str()),
            (Task::TextClassification, "sentiment-analysis")
        );
        assert_eq!(
            "ner".parse::<TaskSpec>().unwrap().task,
            Task::TokenClassification
        );
        let t: TaskSpec = "translation_en_to_de".parse().unwrap();
        assert_eq!(t.task, Task::Translation);
        assert_eq!(t.languages, Some(("en".into(), "de".into())));
    }

    #[test]
    fn unknown_task_is_a_clear_error() {
        let e = "text-clasification"
            .parse::<TaskSpec>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("text-clasification") && e.contains("feature-extraction"),
            "{e}"
        );
        assert!("translation_en".parse::<TaskSpec>().is_err());
    }

    #[test]
    fn unimplemented_task_names_itself() {
        let e = "audio-classification"
            .parse::<TaskSpec>()
            .unwrap()
            .ensure_implemented()
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("audio-classification") && msg.contains("text-classification"),
            "{msg}"
        );
    }

    #[test]
    fn image_tasks_take_image_files_raw_and_text_tasks_nothing() {
        let png = |t: Task| t.raw_media_types().contains(&"image/png");
        assert!(png(Task::ImageClassification));
        assert_eq!(
            Task::ImageClassification.raw_media_types(),
            crate::codec::IMAGE_MEDIA_TYPES
        );
        for t in [
            Task::TextClassification,
            Task::TextGeneration,
            Task::QuestionAnswering,
        ] {
            assert!(t.raw_media_types().is_empty(), "{t}");
        }
    }

    #[test]
    fn infers_from_architectures_most_specific_first() {
        let infer = |a: &str| TaskSpec::infer(&[a.to_owned()]).map(|s| s.task);
        assert_eq!(
            infer("BertForSequenceClassification").unwrap(),
            Task::TextClassification
        );
        assert_eq!(infer("BertModel").unwrap(), Task::FeatureExtraction);
        assert_eq!(infer("XLMRobertaModel").unwrap(), Task::FeatureExtraction);
        assert_eq!(
            infer("TapasForQuestionAnswering").unwrap(),
            Task::TableQuestionAnswering
        );
        assert_eq!(
            infer("BertForQuestionAnswering").unwrap(),
            Task::QuestionAnswering
        );
        assert_eq!(
            infer("WhisperForConditionalGeneration").unwrap(),
            Task::AutomaticSpeechRecognition
        );
        assert_eq!(
            infer("T5ForConditionalGeneration").unwrap(),
            Task::Text2TextGeneration
        );
        assert_eq!(infer("GPT2LMHeadModel").unwrap(), Task::TextGeneration);
        assert_eq!(
            infer("ViTForImageClassification").unwrap(),
            Task::ImageClassification
        );
        assert_eq!(
            infer("DeiTForImageClassificationWithTeacher").unwrap(),
            Task::ImageClassification
        );
        assert_eq!(
            infer("Dinov2ForImageClassification").unwrap(),
            Task::ImageClassification
        );
        assert!(infer("SomethingWeird")
            .unwrap_err()
            .to_string()
            .contains("HF_TASK"));
        assert!(TaskSpec::infer(&[]).is_err());
    }
}
