//! Text to token ids: BERT WordPiece (uncased, the vocabulary of all-MiniLM-L6-v2) through the
//! `tokenizers` crate. The tokenizer file ships in `models/` and is built into the binary, so a
//! fresh install tokenizes without any download.

use std::path::Path;

/// The tokenizer.json built into the binary (Apache-2.0, see models/README.md).
const BUILT_IN: &[u8] = include_bytes!("../../models/tokenizer.json");

#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("{path}: not a usable tokenizer.json: {reason}")]
    Load { path: String, reason: String },
    #[error("tokenizing {text:?}: {reason}")]
    Encode { text: String, reason: String },
    #[error("the tokenizer has no {0} token")]
    MissingSpecial(&'static str),
}

/// One caption as the model reads it: `[CLS] word pieces… [SEP]`, truncated to a length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// For each id, the index of the word it came from (None for `[CLS]`/`[SEP]`), so whole
    /// words can be masked together.
    pub words: Vec<Option<u32>>,
}

/// The ids of the special tokens the model and the masking use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Specials {
    pub pad: u32,
    pub cls: u32,
    pub sep: u32,
    pub mask: u32,
}

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    pub specials: Specials,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab", &self.vocab_size())
            .finish()
    }
}

impl Tokenizer {
    /// The built-in BERT uncased WordPiece tokenizer.
    pub fn built_in() -> Self {
        Self::from_bytes(BUILT_IN, "built-in tokenizer.json").expect("the built-in tokenizer loads")
    }

    pub fn from_file(path: &Path) -> Result<Self, TextError> {
        let bytes = std::fs::read(path).map_err(|e| TextError::Load {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    fn from_bytes(bytes: &[u8], label: &str) -> Result<Self, TextError> {
        let mut inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| TextError::Load {
            path: label.to_string(),
            reason: e.to_string(),
        })?;
        // We truncate and pad ourselves, per batch.
        inner.with_truncation(None).map_err(|e| TextError::Load {
            path: label.to_string(),
            reason: e.to_string(),
        })?;
        inner.with_padding(None);
        let id = |tok: &'static str| inner.token_to_id(tok).ok_or(TextError::MissingSpecial(tok));
        let specials = Specials {
            pad: id("[PAD]")?,
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            mask: id("[MASK]")?,
        };
        Ok(Self { inner, specials })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// `[CLS] text [SEP]`, at most `max_len` ids (word pieces are cut, `[SEP]` is kept).
    pub fn encode(&self, text: &str, max_len: usize) -> Result<Tokens, TextError> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| TextError::Encode {
                text: text.to_string(),
                reason: e.to_string(),
            })?;
        let mut ids = enc.get_ids().to_vec();
        let mut words = enc.get_word_ids().to_vec();
        let max_len = max_len.max(2);
        if ids.len() > max_len {
            ids.truncate(max_len - 1);
            words.truncate(max_len - 1);
            ids.push(self.specials.sep);
            words.push(None);
        }
        Ok(Tokens { ids, words })
    }

    /// The word pieces of `text` without special tokens, at most `max_len` of them.
    pub fn pieces(&self, text: &str, max_len: usize) -> Result<Tokens, TextError> {
        let full = self.encode(text, max_len + 2)?;
        let n = full.ids.len();
        Ok(Tokens {
            ids: full.ids[1..n - 1].to_vec(),
            words: full.words[1..n - 1].to_vec(),
        })
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_uncased_word_pieces() {
        let t = Tokenizer::built_in();
        assert_eq!(t.vocab_size(), 30522);
        let s = t.specials;
        assert_eq!((s.pad, s.cls, s.sep, s.mask), (0, 101, 102, 103));
        let tok = t.encode("A man is eating food.", 64).unwrap();
        // Known BERT uncased ids: a=1037 man=2158 is=2003 eating=5983 food=2833 .=1012
        assert_eq!(tok.ids, vec![101, 1037, 2158, 2003, 5983, 2833, 1012, 102]);
        assert_eq!(tok.words[0], None);
        assert_eq!(tok.words[1], Some(0));
        let long = t.encode(&"snow ".repeat(100), 10).unwrap();
        assert_eq!(long.ids.len(), 10);
        assert_eq!(*long.ids.last().unwrap(), 102);
        // Word pieces of one word share its word index.
        let wp = t.pieces("unaffable", 16).unwrap();
        assert!(wp.ids.len() > 1);
        assert!(wp.words.iter().all(|w| *w == Some(0)));
    }
}
