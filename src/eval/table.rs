//! Results over several seeds: mean ± sample standard deviation, and the ablation table (one
//! row per variant, one column per metric) as Markdown, CSV and JSON.

use serde::{Deserialize, Deserializer, Serialize};

// JSON has no NaN: serde_json writes a missing metric (NaN) as null; reading maps it back.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn nan_if_null_rows<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
    let rows = Vec::<Vec<Option<f64>>>::deserialize(d)?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        .collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    #[serde(deserialize_with = "nan_if_null")]
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for a single value.
    #[serde(deserialize_with = "nan_if_null")]
    pub std: f64,
    pub n: usize,
}

pub fn mean_std(values: &[f64]) -> MeanStd {
    let n = values.len();
    if n == 0 {
        return MeanStd {
            mean: f64::NAN,
            std: f64::NAN,
            n,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    MeanStd { mean, std, n }
}

impl std::fmt::Display for MeanStd {
    /// Percent with one decimal (metrics here are shares): `87.3 ± 1.2`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.n > 1 {
            write!(f, "{:.1} ± {:.1}", 100.0 * self.mean, 100.0 * self.std)
        } else {
            write!(f, "{:.1}", 100.0 * self.mean)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub variant: String,
    /// Per metric (in the table's column order), over the seeds.
    pub values: Vec<MeanStd>,
    /// Every seed's value per metric.
    #[serde(deserialize_with = "nan_if_null_rows")]
    pub seeds: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub metrics: Vec<String>,
    pub rows: Vec<Row>,
}

impl Table {
    pub fn new(metrics: Vec<String>) -> Self {
        Self {
            metrics,
            rows: Vec::new(),
        }
    }

    /// Adds a variant from its per-seed values `[seed][metric]`.
    pub fn push(&mut self, variant: &str, per_seed: &[Vec<f64>]) {
        let by_metric: Vec<Vec<f64>> = (0..self.metrics.len())
            .map(|m| per_seed.iter().map(|s| s[m]).collect())
            .collect();
        self.rows.push(Row {
            variant: variant.into(),
            values: by_metric.iter().map(|v| mean_std(v)).collect(),
            seeds: by_metric,
        });
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("| variant | {} |\n", self.metrics.join(" | "));
        out.push_str(&format!("|---|{}\n", "---:|".repeat(self.metrics.len())));
        for r in &self.rows {
            let cells: Vec<String> = r.values.iter().map(|v| v.to_string()).collect();
            out.push_str(&format!("| {} | {} |\n", r.variant, cells.join(" | ")));
        }
        out
    }

    /// One line per variant: `variant,<metric>_mean,<metric>_std,…,seeds` (shares, not percent).
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["variant".to_string()];
        for m in &self.metrics {
            header.push(format!("{m}_mean"));
            header.push(format!("{m}_std"));
        }
        header.push("seeds".into());
        w.write_record(&header).expect("in memory");
        for r in &self.rows {
            let mut rec = vec![r.variant.clone()];
            for v in &r.values {
                rec.push(format!("{:.6}", v.mean));
                rec.push(format!("{:.6}", v.std));
            }
            rec.push(r.values.first().map(|v| v.n).unwrap_or(0).to_string());
            w.write_record(&rec).expect("in memory");
        }
        String::from_utf8(w.into_inner().expect("in memory")).expect("utf-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std_by_hand() {
        let m = mean_std(&[0.5, 0.7, 0.9]);
        assert!((m.mean - 0.7).abs() < 1e-12);
        assert!((m.std - 0.2).abs() < 1e-12); // √((0.04 + 0 + 0.04) / 2)
        assert_eq!(mean_std(&[0.3]).std, 0.0);
        assert_eq!(m.to_string(), "70.0 ± 20.0");
    }

    #[test]
    fn table_renders_every_variant_in_all_formats() {
        let mut t = Table::new(vec!["accuracy".into(), "t2i_r5".into()]);
        t.push("scratch", &[vec![0.5, 0.1], vec![0.6, 0.3]]);
        t.push("mlm+mim", &[vec![0.9, 0.4]]);
        let md = t.markdown();
        assert!(
            md.contains("| scratch | 55.0 ± 7.1 | 20.0 ± 14.1 |"),
            "{md}"
        );
        assert!(md.contains("| mlm+mim | 90.0 | 40.0 |"), "{md}");
        let csv = t.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "variant,accuracy_mean,accuracy_std,t2i_r5_mean,t2i_r5_std,seeds"
        );
        assert!(
            lines[1].starts_with("scratch,0.550000,0.070711,0.200000,"),
            "{csv}"
        );
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["rows"][1]["seeds"][0][0], 0.9);
    }

    /// A table read back from its JSON file is the one written, a missing metric (NaN,
    /// written as null) included.
    #[test]
    fn table_json_reads_back_with_missing_metrics() {
        let mut t = Table::new(vec!["accuracy".into(), "t2i_r5".into()]);
        t.push("scratch", &[vec![0.5, f64::NAN], vec![0.6, f64::NAN]]);
        t.push("mlm+mim", &[vec![0.9, 0.4]]);
        let text = serde_json::to_string(&t).unwrap();
        assert!(text.contains("null"), "{text}");
        let back: Table = serde_json::from_str(&text).unwrap();
        assert_eq!(back.rows[1], t.rows[1]);
        assert_eq!(back.rows[0].values[0], t.rows[0].values[0]);
        assert!(back.rows[0].values[1].mean.is_nan());
        assert!(back.rows[0].seeds[1][0].is_nan());
        assert_eq!(back.metrics, t.metrics);
    }
}
