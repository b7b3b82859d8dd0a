//! The flat parameter vector (`crate::params`) with user layers.

use crate::Sequential;
use nalgebra::DMatrix;

/// A user layer whose one tensor is read-only (`param` but no `param_mut`).
#[derive(Clone, Debug)]
struct Frozen(Vec<f64>);

impl crate::Layer<f64> for Frozen {
    fn kind(&self) -> &str {
        "frozen"
    }
    fn input_dim(&self) -> Option<usize> {
        None
    }
    fn output_dim(&self, d: usize) -> crate::Result<usize> {
        Ok(d)
    }
    fn forward(&self, x: &DMatrix<f64>, out: &mut DMatrix<f64>) -> crate::Result<()> {
        *out = x.clone();
        Ok(())
    }
    fn forward_tape(
        &self,
        ctx: &mut crate::TapeContext<'_, f64>,
        input: autodiff::Var,
    ) -> crate::Result<autodiff::Var> {
        ctx.param(&DMatrix::from_column_slice(self.0.len(), 1, &self.0));
        Ok(input)
    }
    fn num_param_tensors(&self) -> usize {
        1
    }
    fn param(&self, i: usize) -> Option<crate::ParamRef<'_, f64>> {
        (i == 0).then(|| crate::ParamRef {
            name: "frozen",
            rows: self.0.len(),
            cols: 1,
            values: &self.0,
            penalised: false,
        })
    }
}

/// Review 3: `params_from_flat` skipped a read-only tensor without skipping its slot,
/// so every tensor after it read its neighbour's values (silently shifted weights).
#[test]
fn params_from_flat_keeps_the_slots_of_read_only_tensors() {
    let mut net = Sequential::<f64>::new();
    net.push(Box::new(Frozen(vec![7.0, 8.0]))).unwrap();
    net.push(Box::new(
        crate::Dense::new(DMatrix::zeros(1, 2), nalgebra::DVector::zeros(1)).unwrap(),
    ))
    .unwrap();
    assert_eq!(net.num_params(), 2 + 2 + 1);
    net.params_from_flat(&[0.0, 0.0, 1.0, 2.0, 3.0]).unwrap();
    // The frozen tensor keeps 7, 8; the dense layer reads its own slots.
    assert_eq!(net.flat_params(), vec![7.0, 8.0, 1.0, 2.0, 3.0]);
}
