// Progressive enhancement only: every page works with JavaScript off.
import { initAll } from '../nhsuk/nhsuk-frontend.min.js';
import './session-timeout.mjs';

initAll();
