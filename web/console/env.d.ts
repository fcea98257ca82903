// Stylesheets are imported for the bundler (Vite puts them in the page); they export nothing.
declare module '*.css';
