//! Visual question answering items: a question about an imported image and its answers, kept in
//! columns of `items` (migration V3) and written with the other imported items.

/// The question an imported VQA item asks about its image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedQuestion {
    pub question: String,
    /// Every answer the source gives, as a JSON array of the distinct answers, most given first:
    /// `[{"answer": "2", "count": 7, "confidence": {"yes": 6, "maybe": 1}}, …]` (`confidence`
    /// only where the source rates its answers, as VQA v2 does). Counts are what VQA soft scores
    /// are computed from.
    pub answers_json: String,
    /// VQA v2's "yes/no", "number" or "other".
    pub answer_type: Option<String>,
    /// VQA v2's question prefix, e.g. "what color is the".
    pub question_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::super::{migrations, ImageBlob, ImportedItem, Store};
    use super::*;

    fn image(store: &Store) -> ImageBlob {
        ImageBlob {
            hash: store.blobs().put(b"png bytes").unwrap(),
            size: 9,
            mime: "image/png".into(),
            width: 64,
            height: 64,
            thumb_hash: store.blobs().put(b"thumb").unwrap(),
            thumb_size: 5,
            thumb_width: 64,
            thumb_height: 64,
        }
    }

    fn item(image: &ImageBlob, question: Option<&str>, answers: &str) -> ImportedItem {
        ImportedItem {
            image_hash: image.hash.clone(),
            caption: String::new(),
            source_path: "/data/0.png".into(),
            split: Some("train".into()),
            meta_json: None,
            question: question.map(|q| ImportedQuestion {
                question: q.into(),
                answers_json: answers.into(),
                answer_type: Some("yes/no".into()),
                question_type: None,
            }),
        }
    }

    #[test]
    fn one_image_carries_many_questions_and_reimport_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ds = store.ensure_dataset("vqa").unwrap();
        let im = image(&store);
        let batch = [
            item(
                &im,
                Some("is there a circle?"),
                r#"[{"answer":"yes","count":1}]"#,
            ),
            item(&im, Some("is it red?"), r#"[{"answer":"no","count":1}]"#),
            // The same image with an empty caption and no question is a different item.
            item(&im, None, ""),
        ];
        let images = std::slice::from_ref(&im);
        assert_eq!(store.save_imported_items(ds, images, &batch).unwrap(), 3);
        assert_eq!(store.save_imported_items(ds, images, &batch).unwrap(), 0);
        let items = store.items("vqa", None).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].question.as_deref(), Some("is there a circle?"));
        assert_eq!(
            items[0].answers,
            Some(serde_json::json!([{"answer": "yes", "count": 1}]))
        );
        assert_eq!(items[0].answer_type.as_deref(), Some("yes/no"));
        assert_eq!(items[2].question, None);
        let shown = serde_json::to_value(&items[2]).unwrap();
        assert!(
            shown.get("question").is_none(),
            "caption items show no VQA fields"
        );
    }

    #[test]
    fn upgrading_a_v2_store_keeps_its_items_unique() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut conn = rusqlite::Connection::open(dir.path().join("tessera.db")).unwrap();
            migrations::migrations().to_version(&mut conn, 2).unwrap();
            conn.execute_batch(
                "INSERT INTO datasets(id, name) VALUES (1, 'coco');
                 INSERT INTO blobs(hash, size, mime) VALUES ('h', 1, 'image/png');
                 INSERT INTO items(dataset_id, image_hash, caption, source_path)
                 VALUES (1, 'h', 'a cat', '/a.png');",
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        // Later migrations may follow V3.
        assert!(store.schema_version().unwrap() >= 3);
        let old = ImportedItem {
            image_hash: "h".into(),
            caption: "a cat".into(),
            source_path: "/a.png".into(),
            split: None,
            meta_json: None,
            question: None,
        };
        let ds = store.dataset_id("coco").unwrap();
        assert_eq!(store.save_imported_items(ds, &[], &[old]).unwrap(), 0);
        assert_eq!(store.items("coco", None).unwrap().len(), 1);
    }
}
