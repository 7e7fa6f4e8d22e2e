//! The detector as a standard ONNX model (`ae export DETECTOR --onnx FILE`),
//! built with the `onnx-protobuf` messages (rust-protobuf, generated from the
//! published `onnx.proto`).
//!
//! One graph, opset [`OPSET`]: input `images` float32 `[N, 784]` (pixels
//! /255, row-major, as `ae` reads them); outputs `reconstruction` float32
//! `[N, 784]`, `score` float32 `[N]` and `is_anomaly` bool `[N]`. The
//! weights keep PyTorch's `[out, in]` layout (`Gemm` with `transB = 1`);
//! the score is computed as `ae` computes it (the squared or absolute
//! difference widened to double and averaged in double, then rounded to
//! float32) and compared, in double, with the threshold, which is in the
//! graph. The detector's metadata goes into `metadata_props`.

use std::path::Path;

use ae_model::{INPUT, Params};
use ae_store::Score;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType, tensor_shape_proto, type_proto,
};

use crate::{DetectError, Detector};

/// The ONNX operator set the graph uses (`ReduceMean` takes `axes` as an
/// attribute up to 17).
pub const OPSET: i64 = 17;
/// The ONNX IR version written: the one that goes with opset 17.
pub const IR_VERSION: i64 = 8;

/// Writes `detector` as an ONNX model to `path`, atomically.
pub fn export_onnx(detector: &Detector, path: &Path) -> Result<(), DetectError> {
    let bytes = onnx_model(detector)
        .write_to_bytes()
        .map_err(|e| DetectError::Onnx(e.to_string()))?;
    ae_store::write_atomic(path, |out| out.write_all(&bytes))?;
    Ok(())
}

/// The ONNX model of `detector`.
pub fn onnx_model(detector: &Detector) -> ModelProto {
    let info = detector.info();
    let params = detector.params();
    let mut graph = GraphProto {
        name: "ae_detector".into(),
        doc_string: format!(
            "ae autoencoder anomaly detector: 784 -> {} (ReLU) -> 784 (sigmoid); score = {} per image; anomaly when score > {:?}",
            info.latent,
            info.score.column(),
            info.threshold
        ),
        ..Default::default()
    };
    graph.initializer = weights(params);
    graph.initializer.push(TensorProto {
        name: "threshold".into(),
        data_type: DataType::DOUBLE as i32,
        double_data: vec![info.threshold],
        ..Default::default()
    });
    let difference = match info.score {
        Score::Mse => node("Mul", &["difference", "difference"], "error", vec![]),
        Score::Mae => node("Abs", &["difference"], "error", vec![]),
    };
    graph.node = vec![
        node(
            "Gemm",
            &["images", "encoder.weight", "encoder.bias"],
            "hidden",
            vec![int("transB", 1)],
        ),
        node("Relu", &["hidden"], "codes", vec![]),
        node(
            "Gemm",
            &["codes", "decoder.weight", "decoder.bias"],
            "logits",
            vec![int("transB", 1)],
        ),
        node("Sigmoid", &["logits"], "reconstruction", vec![]),
        node(
            "Sub",
            &["images", "reconstruction"],
            "difference_f32",
            vec![],
        ),
        node(
            "Cast",
            &["difference_f32"],
            "difference",
            vec![int("to", DataType::DOUBLE as i64)],
        ),
        difference,
        node(
            "ReduceMean",
            &["error"],
            "score_f64",
            vec![ints("axes", &[1]), int("keepdims", 0)],
        ),
        node(
            "Cast",
            &["score_f64"],
            "score",
            vec![int("to", DataType::FLOAT as i64)],
        ),
        node(
            "Cast",
            &["score"],
            "score_wide",
            vec![int("to", DataType::DOUBLE as i64)],
        ),
        node(
            "Greater",
            &["score_wide", "threshold"],
            "is_anomaly",
            vec![],
        ),
    ];
    graph.input = vec![value(
        "images",
        DataType::FLOAT,
        &[Dim::N, Dim::Fixed(INPUT)],
    )];
    graph.output = vec![
        value(
            "reconstruction",
            DataType::FLOAT,
            &[Dim::N, Dim::Fixed(INPUT)],
        ),
        value("score", DataType::FLOAT, &[Dim::N]),
        value("is_anomaly", DataType::BOOL, &[Dim::N]),
    ];
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..Default::default()
        }],
        producer_name: "ae".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "Exported from {} by ae {}",
            detector.path().display(),
            env!("CARGO_PKG_VERSION")
        ),
        graph: Some(graph).into(),
        metadata_props: info
            .to_metadata()
            .into_iter()
            .map(|(key, value)| StringStringEntryProto {
                key,
                value,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The model's four tensors, by their safetensors names.
fn weights(params: &Params) -> Vec<TensorProto> {
    let l = params.latent() as i64;
    let tensor = |name: &str, dims: Vec<i64>, data: &[f32]| TensorProto {
        name: name.into(),
        dims,
        data_type: DataType::FLOAT as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    };
    let n = INPUT as i64;
    vec![
        tensor("encoder.weight", vec![l, n], &params.encoder_weight),
        tensor("encoder.bias", vec![l], &params.encoder_bias),
        tensor("decoder.weight", vec![n, l], &params.decoder_weight),
        tensor("decoder.bias", vec![n], &params.decoder_bias),
    ]
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|i| i.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INT.into(),
        i,
        ..Default::default()
    }
}

fn ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: AttributeType::INTS.into(),
        ints: ints.to_vec(),
        ..Default::default()
    }
}

/// A dimension of a graph input or output.
enum Dim {
    /// The batch: any number of images.
    N,
    Fixed(usize),
}

fn value(name: &str, element: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::N => tensor_shape_proto::dimension::Value::DimParam("N".into()),
                Dim::Fixed(n) => tensor_shape_proto::dimension::Value::DimValue(*n as i64),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: element as i32,
                shape: Some(TensorShapeProto {
                    dim,
                    ..Default::default()
                })
                .into(),
                ..Default::default()
            })),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_reads_images_and_writes_the_three_outputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.safetensors");
        let info = ae_store::DetectorInfo {
            latent: 8,
            score: Score::Mse,
            rule: ae_store::ThresholdRule::MeanMultiple,
            parameter: 2.0,
            source: ae_store::ThresholdSource::Test,
            threshold: 0.02,
            source_scores: ae_store::Summary {
                mean: 0.01,
                median: 0.01,
                std: 0.0,
                max: 0.02,
            },
            model_sha256: "00".repeat(32),
            ae_version: "0".into(),
        };
        Params::glorot(8, 1)
            .expect("init")
            .save_with_metadata(&path, info.to_metadata())
            .expect("save");
        let detector = Detector::open(&path).expect("open");
        let bytes = onnx_model(&detector).write_to_bytes().expect("encode");
        let model = ModelProto::parse_from_bytes(&bytes).expect("decodes");
        let graph = model.graph.as_ref().expect("graph");
        let names = |v: &[ValueInfoProto]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&graph.input), ["images"]);
        assert_eq!(
            names(&graph.output),
            ["reconstruction", "score", "is_anomaly"]
        );
        assert_eq!(model.opset_import[0].version, OPSET);
        let threshold = graph
            .initializer
            .iter()
            .find(|t| t.name == "threshold")
            .expect("the threshold is in the graph");
        assert_eq!(threshold.double_data, [0.02]);
        let meta: Vec<(&str, &str)> = model
            .metadata_props
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        assert!(meta.contains(&("format", "ae-detector")));
        assert!(meta.contains(&("threshold", "0.02")));
    }
}
