// esbuild bundles CSS imported for its side effect (into app.css).
declare module "*.css";
