/* global window, document */
// No inline script: the CSP allows only 'self'. In the training window this acts as the
// training page (ready → orders); in the UI window it only reports what it can see.
const training = window.tesseraTraining;
document.getElementById('role').textContent = training ? 'training' : 'ui';
window.fixture = { orders: [] };
if (training) {
  training.onOrders((orders) => {
    window.fixture.orders.push(orders);
    // Plays a page that saves at once when asked (quit, sleep).
    if (orders.saveCheckpointRequest !== null) void training.checkpointSaved({ requestId: orders.saveCheckpointRequest, round: 0, step: 1 });
  });
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  window.fixture.orders.push(await training.ready({ adapterFound: Boolean(adapter), adapterName: adapter?.info?.description || null }));
}
